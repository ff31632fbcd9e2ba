"""Delivers an opened upstream stream to the client and settles the request.

SSE clients get the upstream bytes unchanged, chunk by chunk, as they arrive; only terminal events
are decoded. Non-streaming clients get one Response JSON. Either way one request-log row is written
(in the background) with the usage the upstream reported, and the account's in-flight slot is freed.
"""

from __future__ import annotations

import hashlib
import time

import orjson
from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import json

from server import metrics
from server.errors import ProxyError
from server.keys.admission import Admission
from server.keys.admission import settle as admission_settle
from server.lifecycle import drain as server_drain
from server.proxy import access, keepalive
from server.proxy.assemble import OutputFiller, ResponseAssembler
from server.proxy.context import ProxyContext
from server.proxy.outcome import Outcome, drain
from server.proxy.trace import OpenedStream, Trace
from server.upstream.events import incomplete, response_failed
from server.upstream.sse import SSEEvent, encode_event
from server.usage.records import RequestRecord, new_request_id

# Upstream answer headers the client may see (turn state, model, the account's windows for the CLI's
# status line).
_PASSED_BACK = ("x-codex-turn-state", "openai-model", "x-models-etag", "x-reasoning-included")
_PASSED_BACK_PREFIXES = ("x-codex-primary-", "x-codex-secondary-", "x-codex-credits-")


def response_headers(opened: OpenedStream, trace: Trace, request_id: str) -> dict[str, str]:
    upstream = opened.stream.headers
    out = {name: upstream[name] for name in _PASSED_BACK if name in upstream}
    for name, value in upstream.items():
        if name.lower().startswith(_PASSED_BACK_PREFIXES):
            out[name.lower()] = value
    if trace.rate_limit_view is not None:  # the pool's windows (or none) instead of this account's
        out = {k: v for k, v in out.items() if not k.startswith(_PASSED_BACK_PREFIXES)}
        out.update(trace.rate_limit_view)
    out["x-request-id"] = request_id
    out["x-codex-lb-account"] = str(opened.account.id)
    out["x-codex-lb-attempts"] = str(trace.attempts)
    return out


async def stream_to_client(
    request: Request,
    opened: OpenedStream,
    trace: Trace,
    request_id: str,
    outcome: Outcome,
    fill_output: bool = False,
) -> None:
    """Send the stream; `outcome` is filled in as it goes, so a client that hangs up right after the
    terminal event still has its request settled as a success. `fill_output` (/v1 clients): the terminal
    event carries the stream's output items, sent event by event instead of chunk by chunk."""
    headers = response_headers(opened, trace, request_id)
    trace.head_sent_mono = time.monotonic()
    headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    headers["cache-control"] = "no-cache"
    client = await keepalive.respond(request, headers)
    if fill_output:
        filler = OutputFiller()

        async def send(chunk: bytes, events: list[SSEEvent]) -> None:
            if events:  # whole events only: a partial one stays in the scanner until its end arrives
                await client.send(filler.sse(events))
    else:

        async def send(chunk: bytes, events: list[SSEEvent]) -> None:
            await client.send(chunk)

    if not await drain(opened, outcome, send):
        # The upstream went away after content reached the client: end with a proper failure event.
        await client.send(encode_event(incomplete(outcome.response_id, outcome.error_code, 0)))
    await client.eof()


async def collect_response(opened: OpenedStream, trace: Trace) -> tuple[Outcome, dict | None]:
    outcome = Outcome()
    assembler = ResponseAssembler()

    async def add(chunk: bytes, events: list[SSEEvent]) -> None:
        for event in events:
            assembler.add(event)

    await drain(opened, outcome, add)
    trace.head_sent_mono = time.monotonic()
    return outcome, assembler.response()


def json_answer(opened: OpenedStream, trace: Trace, request_id: str, outcome: Outcome, body: dict | None):
    headers = response_headers(opened, trace, request_id)
    headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    if not outcome.terminal_seen or body is None:
        raise ProxyError(
            "The upstream stream ended before the response completed.",
            status=502,
            type="server_error",
            code="stream_incomplete",
            headers=headers,
        )
    if body.get("status") == "failed":
        error = body.get("error") or {}
        raise ProxyError(
            str(error.get("message") or "The response failed upstream."),
            status=502,
            type="server_error",
            code=str(error.get("code") or "response_failed"),
            headers=headers,
        )
    return json(body, headers=headers, dumps=orjson.dumps)


def failed_event(response_id: str, code: str, message: str) -> bytes:
    """A `response.failed` SSE event: how a stream whose head has gone out reports an error."""
    return encode_event(response_failed(response_id, code, message, 0))


class Settlement:
    """One proxied request (or WebSocket turn) from admission to its request-log row.

    Routes create it when the request is parsed, fill in what happens (`opened`, `outcome`,
    `admission`, `failed(exc)`), and call `finish(ctx)` in their `finally`. Until something else is
    known the request counts as a client that went away (499).
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
        "__weakref__",
    )

    def __init__(
        self,
        route: str,
        transport: str,
        *,
        model: str = "",
        reasoning_effort: str = "",
        session_key: str | None = None,
        api_key_id: int | None = None,
    ) -> None:
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

    def ended(self, outcome: Outcome) -> None:
        """The stream ran to its end (or the upstream went away): the outcome says how it went."""
        self.status, self.error_code = outcome.status, outcome.error_code

    def failed(self, exc: ProxyError) -> None:
        """The client gets this error; record it, and let the client quote our request id."""
        self.status, self.error_code, self.reason = exc.status, exc.code or "", exc.message
        exc.headers.setdefault("x-request-id", self.request_id)

    def finish(self, ctx: ProxyContext) -> None:
        """Free the account's slot, feed what we learned to the balancer, queue the request-log row, and
        settle the API key's reservation to the real usage (in the background)."""
        server_drain.untrack(self)
        outcome, opened, trace = self.outcome, self.opened, self.trace
        if outcome is not None and outcome.terminal_seen:
            # A client that hangs up right after the terminal event was still served.
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
        ttft = (trace.first_content_mono - trace.started_mono) * 1000 if trace.first_content_mono else None
        upstream = self.upstream_transport or ("http" if trace.attempts else "")
        now_mono = time.monotonic()
        latency_ms = (now_mono - trace.started_mono) * 1000
        account_id = trace.account.id if trace.account else None
        access.served(
            request_id=self.request_id,
            route=self.route,
            transport=self.transport,
            upstream=upstream,
            account_id=account_id,
            model=self.model,
            status=self.status,
            tokens=usage.total_tokens if usage else None,
            latency_ms=latency_ms,
            attempts=trace.attempts,
            error=self.error_code if self.status != 200 else "",
            reason=self.reason if self.status != 200 else "",
        )
        upstream_s = (now_mono - trace.upstream_sent_mono) if trace.upstream_sent_mono else None
        metrics.request_finished(
            self.route,
            self.status,
            self.transport,
            latency_ms / 1000,
            upstream_s,
            ttft / 1000 if ttft is not None else None,
            trace.overhead_ms() / 1000 if trace.head_sent_mono else None,
            usage,
            cost_usd,
        )
        ctx.writer.submit(
            RequestRecord(
                request_id=self.request_id,
                started_at=trace.started,
                route=self.route,
                transport=self.transport,
                status=self.status,
                account_id=account_id,
                api_key_id=self.api_key_id,
                model=self.model,
                reasoning_effort=self.reasoning_effort,
                error_code=self.error_code,
                usage=usage,
                cost_usd=cost_usd,
                latency_ms=latency_ms,
                ttft_ms=ttft,
                attempts=trace.attempts,
                session_key_hash=_hash_session(self.session_key),
                routing=trace.routing,
                upstream_transport=upstream,
                egress=trace.egress,
                user_agent=self.user_agent,
                failovers=",".join(trace.failovers)[:FAILOVERS_MAX],
            )
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
