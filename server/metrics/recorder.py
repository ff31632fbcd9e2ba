"""This worker's row of the shared metrics table, and the calls the proxy makes to count into it.

Each call is a handful of float additions on a memoryview: cheap enough for every request. Until
`attach` runs (CLI commands, unit tests of other modules) every call is a no-op.
"""

from __future__ import annotations

from bisect import bisect_left

from server.metrics.table import LAYOUT, Histogram
from server.usage.records import FinishedRequest

_row = None  # memoryview of doubles: this worker's cells


def attach(table, worker: int | None) -> None:
    """Count into `table`'s row for this worker (the last row when there is no worker number)."""
    global _row
    rows = len(table) // LAYOUT.width
    index = worker if worker is not None and 0 <= worker < rows - 1 else rows - 1
    view = memoryview(table).cast("B").cast("d")
    _row = view[index * LAYOUT.width : (index + 1) * LAYOUT.width]
    # Gauges restart with the worker; counters carry on (a restarted worker keeps adding to them).
    for cell in (LAYOUT.inflight, LAYOUT.websockets_open, LAYOUT.writer_queue, LAYOUT.loop_lag):
        _row[cell] = 0.0
    _row[LAYOUT.alive] = 1.0


def detach() -> None:
    global _row
    if _row is not None:
        _row[LAYOUT.alive] = 0.0
    _row = None


def observe(histogram: Histogram, value: float) -> None:
    row = _row
    if row is None:
        return
    start = histogram.start
    row[start + bisect_left(histogram.buckets, value)] += 1
    count = start + len(histogram.buckets) + 1
    row[count] += value
    row[count + 1] += 1


_DURATION = LAYOUT.histograms["request_duration"]
_UPSTREAM = LAYOUT.histograms["upstream_latency"]
_TTFT = LAYOUT.histograms["ttft"]
_OVERHEAD = LAYOUT.histograms["overhead"]
LOOP_LAG = LAYOUT.histograms["loop_lag"]


def request_finished(finished: FinishedRequest) -> None:
    row = _row
    if row is None:
        return
    row[LAYOUT.request_cell(finished.route, finished.status, finished.transport)] += 1
    observe(_DURATION, finished.latency_ms / 1000)
    if finished.upstream_ms is not None:
        observe(_UPSTREAM, finished.upstream_ms / 1000)
    if finished.ttft_ms is not None:
        observe(_TTFT, finished.ttft_ms / 1000)
    if finished.overhead_ms is not None:
        observe(_OVERHEAD, finished.overhead_ms / 1000)
    usage = finished.usage
    if usage is not None:
        base = LAYOUT.tokens
        row[base] += usage.input_tokens or 0
        row[base + 1] += usage.cached_input_tokens or 0
        row[base + 2] += usage.output_tokens or 0
        row[base + 3] += usage.reasoning_tokens or 0
    if finished.cost_usd:
        row[LAYOUT.cost] += finished.cost_usd


def request_refused(route: str, status: int, transport: str) -> None:
    """A request refused before its route (no settlement): counted, with no latency to observe."""
    if _row is not None:
        _row[LAYOUT.request_cell(route, status, transport)] += 1


def failover(reason: str) -> None:
    if _row is not None:
        index = LAYOUT.reason_index.get(reason, len(LAYOUT.reason_index) - 1)
        _row[LAYOUT.failovers + index] += 1


def refresh(ok: bool) -> None:
    if _row is not None:
        _row[LAYOUT.refreshes + (0 if ok else 1)] += 1


def set_gauges(inflight: int, websockets_open: int, writer_queue: int, loop_lag_s: float) -> None:
    row = _row
    if row is not None:
        row[LAYOUT.inflight] = inflight
        row[LAYOUT.websockets_open] = websockets_open
        row[LAYOUT.writer_queue] = writer_queue
        row[LAYOUT.loop_lag] = loop_lag_s


def add_dropped(count: int) -> None:
    if _row is not None and count:
        _row[LAYOUT.writer_dropped] += count
