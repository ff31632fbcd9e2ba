"""Renders the summed metrics table and the shared account slots as Prometheus text (format 0.0.4)."""

from __future__ import annotations

import time

from server.balancer.slots import AccountSlots, Field
from server.metrics.table import (
    FAILOVER_REASONS,
    LAYOUT,
    REFRESH_OUTCOMES,
    ROUTES,
    STATUSES,
    TOKEN_KINDS,
    TRANSPORTS,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "codex_lb_"
_HISTOGRAM_HELP = {
    "request_duration": ("request_duration_seconds", "Whole request or turn, as the client saw it."),
    "upstream_latency": ("upstream_latency_seconds", "From sending upstream to the end of the answer."),
    "ttft": ("upstream_ttft_seconds", "From sending upstream to the first content event."),
    "overhead": ("proxy_overhead_seconds", "Time the proxy added before the client saw the head."),
    "loop_lag": ("event_loop_lag_seconds", "How late a worker's event loop woke a 1 s timer."),
}


def summed(table) -> tuple[list[float], float]:
    """Every counter summed over the workers' rows; gauges only over live workers; the largest lag."""
    width = LAYOUT.width
    view = memoryview(table).cast("B").cast("d")
    total = [0.0] * width
    lag = 0.0
    gauges = (LAYOUT.inflight, LAYOUT.websockets_open, LAYOUT.writer_queue)
    for start in range(0, len(view), width):
        row = view[start : start + width]
        alive = row[LAYOUT.alive] > 0
        if not any(row):
            continue
        for i, value in enumerate(row):
            total[i] += value
        if not alive:
            for cell in gauges:
                total[cell] -= row[cell]
        elif row[LAYOUT.loop_lag] > lag:
            lag = row[LAYOUT.loop_lag]
    return total, lag


def _labels(**pairs: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def render(table, slots: AccountSlots | None, accounts, now: float | None = None) -> str:
    total, lag = summed(table)
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {_PREFIX}{name} {text}")
        lines.append(f"# TYPE {_PREFIX}{name} {kind}")

    def sample(name: str, value: float, labels: str = "") -> None:
        lines.append(f"{_PREFIX}{name}{labels} {_number(value)}")

    family("requests_total", "counter", "Proxied requests and WebSocket turns by route, status, transport.")
    for r, route in enumerate(ROUTES):
        for s, status in enumerate(STATUSES):
            for t, transport in enumerate(TRANSPORTS):
                value = total[LAYOUT.requests + (r * len(STATUSES) + s) * len(TRANSPORTS) + t]
                if value:
                    sample("requests_total", value, _labels(route=route, status=status, transport=transport))
    for key, histogram in LAYOUT.histograms.items():
        name, text = _HISTOGRAM_HELP[key]
        family(name, "histogram", text)
        cumulative = 0.0
        for i, bound in enumerate((*histogram.buckets, "+Inf")):
            cumulative += total[histogram.start + i]
            le = bound if isinstance(bound, str) else _number(bound)
            sample(name + "_bucket", cumulative, _labels(le=le))
        sample(name + "_sum", total[histogram.start + len(histogram.buckets) + 1])
        sample(name + "_count", total[histogram.start + len(histogram.buckets) + 2])
    family("tokens_total", "counter", "Tokens the upstream reported (cached_input is part of input).")
    for i, kind in enumerate(TOKEN_KINDS):
        sample("tokens_total", total[LAYOUT.tokens + i], _labels(kind=kind))
    family("cost_usd_total", "counter", "Estimated cost of the settled requests, in US dollars.")
    sample("cost_usd_total", total[LAYOUT.cost])
    family("failovers_total", "counter", "Attempts given up on an account and moved to another, by reason.")
    for i, reason in enumerate(FAILOVER_REASONS):
        sample("failovers_total", total[LAYOUT.failovers + i], _labels(reason=reason))
    family("token_refreshes_total", "counter", "OAuth token refreshes this host performed, by outcome.")
    for i, outcome in enumerate(REFRESH_OUTCOMES):
        sample("token_refreshes_total", total[LAYOUT.refreshes + i], _labels(outcome=outcome))
    family("request_log_dropped_total", "counter", "Request-log rows dropped because the queue was full.")
    sample("request_log_dropped_total", total[LAYOUT.writer_dropped])
    family("request_log_queue_depth", "gauge", "Request-log rows waiting to be written.")
    sample("request_log_queue_depth", total[LAYOUT.writer_queue])
    family("inflight_requests", "gauge", "Requests and WebSocket turns in flight on this host.")
    sample("inflight_requests", total[LAYOUT.inflight])
    family("websockets_open", "gauge", "Client WebSockets open on this host.")
    sample("websockets_open", total[LAYOUT.websockets_open])
    family("event_loop_lag_max_seconds", "gauge", "The largest current event-loop lag of the workers.")
    sample("event_loop_lag_max_seconds", lag)
    if slots is not None:
        _accounts(lines, family, sample, slots, accounts, time.time() if now is None else now)
    return "\n".join(lines) + "\n"


def _accounts(lines, family, sample, slots: AccountSlots, accounts, now: float) -> None:
    rows = sorted(accounts, key=lambda a: a.id)
    family("account_state", "gauge", "1 for each account's current state.")
    for a in rows:
        sample("account_state", 1, _labels(account_id=str(a.id), state=a.status))
    family("account_window_used_percent", "gauge", "Used share of each account's usage windows.")
    for a in rows:
        primary, secondary = slots.get(a.slot, Field.PRIMARY_USED), slots.get(a.slot, Field.SECONDARY_USED)
        sample("account_window_used_percent", primary, _labels(account_id=str(a.id), window="primary"))
        sample("account_window_used_percent", secondary, _labels(account_id=str(a.id), window="secondary"))
    family("account_inflight", "gauge", "Requests in flight on each account, all workers of this host.")
    for a in rows:
        sample("account_inflight", slots.get(a.slot, Field.INFLIGHT), _labels(account_id=str(a.id)))
    family("account_cooldown_seconds", "gauge", "Seconds until a cooling-down account is tried again.")
    for a in rows:
        left = max(0.0, slots.get(a.slot, Field.COOLDOWN_UNTIL) - now)
        sample("account_cooldown_seconds", round(left, 3), _labels(account_id=str(a.id)))
