"""Settling one proxied request (or WebSocket turn): its account's slot, the balancer's lessons, the API
key's reservation, the access line, the metrics and the request-log row, whatever way it ended."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from sanic import Request
from sanic.exceptions import SanicException

from server import metrics
from server.errors import ProxyError
from server.keys.admission import Admission
from server.keys.admission import settle as admission_settle
from server.keys.store import KeyRecord
from server.lifecycle import drain as server_drain
from server.proxy import access
from server.proxy.context import ProxyContext
from server.proxy.outcome import Outcome
from server.proxy.trace import OpenedStream, Trace
from server.usage.records import FinishedRequest, new_request_id
from server.usage.tokens import TokenUsage


class Settlement:
    """One proxied request (or WebSocket turn) from admission to its request-log row.

    A route makes it once the request is parsed; the pipeline (pipeline.serve) enters it, and the steps
    fill in what happens (`opened`, `outcome`, `admission`). Leaving the block settles: a ProxyError raised
    inside is recorded (and told to the client by `report` when the route answers errors its own way:
    after an early SSE head, on a WebSocket), then `finish` frees the account, writes the access line,
    the metrics and the request-log row. Until something else is known the request counts as a client
    that went away (499).
    """

    __slots__ = (
        "request_id",
        "route",
        "transport",
        "model",
        "reasoning_effort",
        "session_key",
        "api_key_id",
        "trace",
        "status",
        "error_code",
        "opened",
        "outcome",
        "admission",
        "upstream_transport",
        "reason",
        "user_agent",
        "ctx",
        "report",
        "__weakref__",
    )

    def __init__(
        self,
        ctx: ProxyContext,
        route: str,
        transport: str,
        *,
        model: str = "",
        reasoning_effort: str = "",
        session_key: str | None = None,
        api_key_id: int | None = None,
        report: Callable[[ProxyError], Awaitable[bool]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.report = report  # tells the client about an error itself; True: the error is handled
        self.request_id = new_request_id()
        self.route = route
        self.transport = transport
        self.model = model
        self.reasoning_effort = reasoning_effort
        self.session_key = session_key
        self.api_key_id = api_key_id
        self.trace = Trace(model=model, request_id=self.request_id)
        self.status = 499
        self.error_code = "client_disconnected"
        self.opened: OpenedStream | None = None
        self.outcome: Outcome | None = None
        self.admission: Admission | None = None
        self.upstream_transport = ""  # set by routes that may go upstream over a WebSocket
        self.reason = ""
        self.user_agent = _client_user_agent()
        server_drain.track(self)

    @classmethod
    def http(
        cls,
        request: Request,
        key: KeyRecord | None,
        *,
        model: str,
        route: str | None = None,
        reasoning_effort: str = "",
        session_key: str | None = None,
        report: Callable[[ProxyError], Awaitable[bool]] | None = None,
    ) -> Settlement:
        """The Settlement of an HTTP request on a proxy route (`route`: its name in the log, default the
        path) made with API key `key` (None: auth is off)."""
        return cls(
            request.app.ctx.proxy,
            route or request.path,
            "http",
            model=model,
            reasoning_effort=reasoning_effort,
            session_key=session_key,
            api_key_id=key.id if key else None,
            report=report,
        )

    async def __aenter__(self) -> Settlement:
        return self

    async def __aexit__(self, kind, exc, traceback) -> bool:
        try:
            if isinstance(exc, ProxyError):
                self.failed(exc)
                if self.report is not None:
                    return await self.report(exc)
            return False
        finally:
            self.finish()

    def ended(self, outcome: Outcome) -> None:
        """The stream ran to its end (or the upstream went away): the outcome says how it went."""
        self.status, self.error_code = outcome.status, outcome.error_code

    def failed(self, exc: ProxyError) -> None:
        """The client gets this error; record it, and let the client quote our request id."""
        self.status, self.error_code, self.reason = exc.status, exc.code or "", exc.message
        exc.headers.setdefault("x-request-id", self.request_id)

    def finish(self) -> None:
        """Free the account's slot, feed what we learned to the balancer, settle the API key's reservation
        to the real usage (in the background), and hand the finished request to the access line, the
        metrics and the request log."""
        server_drain.untrack(self)
        ctx, outcome, opened, trace = self.ctx, self.outcome, self.opened, self.trace
        if outcome is not None and (outcome.terminal_seen or (outcome.status != 200 and self.status == 499)):
            # A client that hangs up right after the terminal event was still served; a stream that
            # ended short says so, unless an error was recorded since.
            self.ended(outcome)
        now = time.time()
        if opened is not None:
            # release() hands a fully read connection back to the pool (keep-alive) and closes one that
            # is not, which also stops the upstream from generating for a client that has gone.
            opened.stream.release()
            ctx.balancer.release(opened.candidate)
            if outcome is not None and outcome.status == 200:
                ctx.balancer.record_success(opened.candidate, opened.snapshot, now)
        usage = outcome.usage if outcome else None
        cost_usd = ctx.prices.cost_usd(self.model, usage) if usage else None
        admission_settle(ctx, self.admission, usage, cost_usd, served=trace.attempts > 0)
        finished = self.finished_request(usage, cost_usd)
        access.served(finished)
        metrics.request_finished(finished)
        ctx.writer.submit(finished)

    def finished_request(self, usage: TokenUsage | None, cost_usd: float | None) -> FinishedRequest:
        """What the access line, the metrics and the request log say about this request, as it ends."""
        trace = self.trace
        now_mono = time.monotonic()
        ttft_ms = (trace.first_content_mono - trace.started_mono) * 1000 if trace.first_content_mono else None
        return FinishedRequest(
            request_id=self.request_id,
            started_at=trace.started,
            route=self.route,
            transport=self.transport,
            status=self.status,
            account_id=trace.account.id if trace.account else None,
            api_key_id=self.api_key_id,
            model=self.model,
            reasoning_effort=self.reasoning_effort,
            error_code=self.error_code,
            usage=usage,
            cost_usd=cost_usd,
            latency_ms=(now_mono - trace.started_mono) * 1000,
            ttft_ms=ttft_ms,
            attempts=trace.attempts,
            session_key_hash=_hash_session(self.session_key),
            routing=trace.routing,
            upstream_transport=self.upstream_transport or ("http" if trace.attempts else ""),
            egress=trace.egress,
            user_agent=self.user_agent,
            failovers=",".join(trace.failovers)[:FAILOVERS_MAX],
            reason=self.reason,
            upstream_ms=(now_mono - trace.upstream_sent_mono) * 1000 if trace.upstream_sent_mono else None,
            overhead_ms=trace.overhead_ms() if trace.head_sent_mono else None,
        )


USER_AGENT_MAX = 300
FAILOVERS_MAX = 500


def _client_user_agent() -> str:
    """The user agent of the request being served (Sanic keeps it in a context variable), for the log."""
    try:
        request = Request.get_current()
    except SanicException:  # no request in this context (a test building a Settlement by hand)
        return ""
    return request.headers.get("user-agent", "")[:USER_AGENT_MAX]


def _hash_session(session_key: str | None) -> str:
    if not session_key:
        return ""
    return hashlib.blake2b(session_key.encode("utf-8", "replace"), digest_size=8).hexdigest()
