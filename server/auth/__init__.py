"""Who may call what: the proxy routes' guard (API keys or local-only), who a request is from (forwarding
headers, host names), cross-site refusals, and dashboard sign-in (sessions, passwords, TOTP, throttling,
the audit log)."""
