"""Prometheus metrics for the whole host: every worker counts into its own row of one shared table, and
GET /metrics sums the rows (plus the shared account slots) into the text format.

Hot-path calls (`request_finished`, `failover`, `refresh`) are a few float additions on this worker's
row: no lock (no other process writes the row), no database, no allocation beyond the call itself.
"""

from server.metrics.recorder import failover, refresh, request_finished, request_refused

__all__ = ["failover", "refresh", "request_finished", "request_refused"]
