"""Who may call what: the proxy routes' guard (API keys or local-only) and the dashboard API's firewall."""
