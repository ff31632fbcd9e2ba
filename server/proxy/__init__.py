"""Client-facing proxy routes: Responses (SSE, JSON and WebSocket turns), compaction, Chat Completions,
transcription, models and usage, each served through the same admission, failover and delivery steps
(docs/architecture.md draws the path)."""
