"""What one proxied request's attempts produce: its `Trace` (for the request log and the response
headers), the `OpenedStream` a stream attempt hands to delivery, and the `JsonAnswer` of a JSON call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.upstream import ratelimits
from server.upstream.failures import UpstreamFailure
from server.upstream.sse import SSEEvent
from server.upstream.stream import UpstreamStream


@dataclass(slots=True)
class Trace:
    """What happened to one request, for the request log and the response headers."""

    started: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)
    attempts: int = 0
    account: AccountRecord | None = None
    routing: str = ""
    egress: str = ""  # the route the serving account's traffic took: "" direct, "proxy:<name>"
    # x-codex-* window headers the client sees instead of the serving account's (server.proxy.pool_usage)
    rate_limit_view: dict[str, str] | None = None
    upstream_sent_mono: float = 0.0
    first_content_mono: float = 0.0
    head_sent_mono: float = 0.0
    last_failure: UpstreamFailure | None = None
    failovers: list[str] = field(default_factory=list)  # "<account id>:<code>" per failed attempt
    model: str = ""  # routes around accounts whose bucket for this model is spent
    # The windows a usage-limit refusal reported: the account's own, and per-model buckets by name.
    last_snapshot: ratelimits.RateLimitSnapshot | None = None
    last_buckets: dict[str, ratelimits.UsageWindow] | None = None
    deadline_mono: float = 0.0  # the whole failover's end (CODEX_LB_UPSTREAM_FAILOVER_TIMEOUT_SECONDS)
    request_id: str = ""  # ours: sent upstream as x-client-request-id unless the client sent one

    def attempt_budget(self, settings) -> float:
        """Seconds this attempt may wait for its first content: the per-attempt first-byte timeout,
        within what is left of the whole failover's."""
        if not self.deadline_mono:
            self.deadline_mono = self.started_mono + settings.upstream_failover_timeout_s
        left = self.deadline_mono - time.monotonic()
        return min(settings.upstream_first_byte_timeout_s, left)

    def overhead_ms(self) -> float:
        """Time the proxy added before the client saw the head: total minus the upstream's own wait."""
        if not self.head_sent_mono:
            return 0.0
        upstream_wait = self.first_content_mono - self.upstream_sent_mono if self.upstream_sent_mono else 0.0
        return max(0.0, (self.head_sent_mono - self.started_mono - upstream_wait) * 1000)


@dataclass(slots=True)
class OpenedStream:
    """An upstream stream that has produced its first content event, and the account serving it."""

    stream: UpstreamStream
    candidate: Candidate
    account: AccountRecord
    events: list[SSEEvent]  # the complete events read while opening, in order (those the client sees)
    snapshot: ratelimits.RateLimitSnapshot | None
    buffered: bytes  # the same, as SSE bytes to pass through (b"" for a WebSocket client's turn)


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    account: AccountRecord
