"""Everything that talks to the ChatGPT backend and the OAuth server: HTTP/SSE and WebSocket clients,
header templates, rate-limit parsing and failure classification."""
