"""The layout of the shared metrics table: fixed label values, so every worker computes the same cell
for the same series without talking, and one row of cells per worker.

A label value outside the fixed sets is counted under "other"; new routes or statuses go in the tuples
below (append only within one running host: the layout is computed once per process).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

from server.balancer.slots import MAX_WORKERS

ROUTES = (
    "/backend-api/codex/responses",
    "/backend-api/codex/responses/compact",
    "/v1/responses",
    "/v1/responses/compact",
    "/v1/chat/completions",
    "/backend-api/transcribe",
    "/v1/audio/transcriptions",
    "other",
)
STATUSES = (
    "200", "400", "401", "403", "404", "408", "413", "422", "429",
    "499", "500", "502", "503", "504", "other",
)  # fmt: skip
TRANSPORTS = ("http", "websocket")
FAILOVER_REASONS = (
    "usage_limit", "rate_limit", "no_quota", "auth", "deactivated", "previous_response_not_found",
    "model_not_supported", "websocket_expired", "transient", "client_error", "other",
)  # fmt: skip
REFRESH_OUTCOMES = ("ok", "failed")
TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")
# Seconds. Requests run from tens of milliseconds to many minutes (agent turns); overhead is ms.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


@dataclass(frozen=True, slots=True)
class Histogram:
    name: str
    buckets: tuple[float, ...]
    start: int  # cells: one per bucket, one for +Inf, then sum, then count

    @property
    def width(self) -> int:
        return len(self.buckets) + 3


class Layout:
    """Cell offsets within one worker's row."""

    def __init__(self) -> None:
        cursor = 0

        def take(count: int) -> int:
            nonlocal cursor
            start, cursor = cursor, cursor + count
            return start

        self.route_index = {r: i for i, r in enumerate(ROUTES)}
        self.status_index = {s: i for i, s in enumerate(STATUSES)}
        self.transport_index = {t: i for i, t in enumerate(TRANSPORTS)}
        self.reason_index = {r: i for i, r in enumerate(FAILOVER_REASONS)}
        self.requests = take(len(ROUTES) * len(STATUSES) * len(TRANSPORTS))
        self.histograms: dict[str, Histogram] = {}
        for name, buckets in (
            ("request_duration", LATENCY_BUCKETS),
            ("upstream_latency", LATENCY_BUCKETS),
            ("ttft", TTFT_BUCKETS),
            ("overhead", OVERHEAD_BUCKETS),
            ("loop_lag", LAG_BUCKETS),
        ):
            self.histograms[name] = Histogram(name, buckets, take(len(buckets) + 3))
        self.tokens = take(len(TOKEN_KINDS))
        self.cost = take(1)
        self.failovers = take(len(FAILOVER_REASONS))
        self.refreshes = take(len(REFRESH_OUTCOMES))
        self.writer_dropped = take(1)
        # Gauges: this worker's current value (summed, or the maximum for the loop lag).
        self.inflight = take(1)
        self.websockets_open = take(1)
        self.writer_queue = take(1)
        self.loop_lag = take(1)
        self.alive = take(1)  # 1 while the worker publishes; a stopped worker's gauges are not summed
        self.width = cursor

    def request_cell(self, route: str, status: int, transport: str) -> int:
        r = self.route_index.get(route, len(ROUTES) - 1)
        s = self.status_index.get(str(status), len(STATUSES) - 1)
        t = self.transport_index.get(transport, 0)
        return self.requests + (r * len(STATUSES) + s) * len(TRANSPORTS) + t


LAYOUT = Layout()


def create_table(context=None):
    """In the main process: the shared table, one row per worker (a RawArray: each row has one writer)."""
    ctx = context or multiprocessing.get_context("spawn")
    return ctx.RawArray("d", LAYOUT.width * (MAX_WORKERS + 1))
