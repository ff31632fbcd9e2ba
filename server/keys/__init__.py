"""API keys: the keys themselves, their limit rules, the shared per-window counters and reservations.

Owns the `api_key*` tables but `api_key_totals` (server.usage keeps those sums of the request log). The
proxy reads keys from a per-worker cache (no database on the happy path); only requests on keys with limit
rules reserve against the shared counters (one statement).
"""
