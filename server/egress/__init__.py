"""Egress proxies per account: the proxies and pools an operator defines, each account's route, and the
per-worker sessions that carry an account's traffic through its route (fail closed, never direct)."""
