"""Opening a turn on an upstream WebSocket, failing over invisibly until content arrives.

The socket opener of the request's Failover.run (account choice, cooldowns, token refresh, attempts and
their budget are the loop's), plus what sockets add: a socket stays bound to its account (response ids
live on it), a turn whose `previous_response_id` the socket does not know is replayed with the full
input, and an expired socket (60-minute limit) is replaced on the same account without the client
noticing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import aiohttp
import orjson

from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.errors import ProxyError
from server.proxy import model_limits
from server.proxy.attempts import try_stream
from server.proxy.context import ProxyContext
from server.proxy.failover import NO_ROOM, NOT_AN_ATTEMPT, SAME_ACCOUNT, Failover, NotTried, Retry
from server.proxy.normalize import NormalizedRequest
from server.proxy.trace import OpenedStream, Trace
from server.upstream import failures, ratelimits
from server.upstream import websocket as upstream_ws
from server.upstream.events import FAILURE_EVENTS, PRELUDE_EVENTS, RATE_LIMITS_EVENT, STREAM_INCOMPLETE
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.sse import SSEEvent
from server.upstream.websocket import FrameEvent, HandshakeRefused, SocketTurn, UpstreamSocket
from server.upstream.websocket_pool import PoolFull, SocketPool

log = logging.getLogger(__name__)


# The link of a socket that had served turns before died before this turn's first event.
STALE_SOCKET = UpstreamFailure(
    FailureKind.TRANSIENT, None, "stale_socket", "upstream WebSocket was closed while idle", 502
)
_LINK_GONE = frozenset({STREAM_INCOMPLETE, "upstream_unavailable"})


class FallBackToHttp(NotTried):
    """The backend refused WebSockets (426), or no socket can be had anywhere: use HTTP for this turn."""


@dataclass(slots=True)
class Binding:
    """The upstream socket a conversation is on, and its account."""

    socket: UpstreamSocket | None = None
    candidate: Candidate | None = None
    account: AccountRecord | None = None

    def clear(self) -> UpstreamSocket | None:
        socket, self.socket = self.socket, None
        return socket

    def drop(self, pool: SocketPool) -> None:
        """Close the bound socket, if any (mid-turn, stale, or not fit for the next try)."""
        socket, self.socket = self.socket, None
        if socket is not None:
            pool.give_back(socket, healthy=False)


async def open_socket_stream(
    ctx: ProxyContext,
    *,
    frame: dict,
    full_frame: dict | None,
    forwarded: dict[str, str],
    session_key: str | None,
    trace: Trace,
    binding: Binding,
    done: Callable[[UpstreamSocket, bool], None],
    for_sse: bool = False,
    pool_key: str | None = None,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
) -> OpenedStream:
    """A turn that has produced its first content event on `binding`'s socket (opened if needed).
    `pool_key` says which idle sockets of the account it may reuse (default: the session's)."""
    failover = Failover(ctx, trace, session_key, allowed_accounts, model_plans)
    opener = SocketOpener(
        ctx,
        trace,
        binding,
        forwarded,
        pool_key if pool_key is not None else session_key or "",
        frame=frame,
        full_frame=full_frame,
        done=done,
        for_sse=for_sse,
    )
    return await failover.run(opener)


class SocketOpener:
    """Tries on pooled upstream sockets, for `Failover.run`: what sockets add to an HTTP try. A socket
    stays bound to its conversation's account (response ids live on it); a turn whose anchor the socket
    lost is replayed with the full input; an expired or stale socket is replaced on the same account
    without the client noticing."""

    # A lost anchor with nothing to replay it from ends the turn.
    final: Collection[FailureKind] = (FailureKind.PREVIOUS_RESPONSE_NOT_FOUND,)

    def __init__(
        self,
        ctx: ProxyContext,
        trace: Trace,
        binding: Binding,
        forwarded: dict[str, str],
        pool_key: str,
        *,
        frame: dict,
        full_frame: dict | None,
        done: Callable[[UpstreamSocket, bool], None],
        for_sse: bool,
    ) -> None:
        self.ctx = ctx
        self.trace = trace
        self.binding = binding
        self.forwarded = forwarded
        self.pool_key = pool_key
        self.frame = frame  # what goes upstream: the full frame once the socket has lost the turn's anchor
        self.full_frame = full_frame  # the turn with the conversation's whole input (None: no anchor)
        self.done = done  # the turn ended on the socket
        self.for_sse = for_sse  # the client reads SSE bytes (an HTTP client's turn)
        self.pool_full = False
        # A bound conversation's first try stays on its account (with its current token).
        self.bound: tuple[Candidate, AccountRecord] | None = None
        if binding.candidate is not None and binding.account is not None:  # bound and unbound together
            account = ctx.roster.get(binding.account.id)
            if account is not None:
                self.bound = (binding.candidate, account)

    async def choose(self, failover: Failover) -> tuple[Candidate, AccountRecord]:
        if self.bound is not None:
            bound, self.bound = self.bound, None
            return bound
        try:
            return await failover.choose()
        except ProxyError:
            if self.pool_full:  # the accounts left had no room for a socket: HTTP may still serve it
                raise FallBackToHttp() from None
            raise

    async def open(
        self, candidate: Candidate, account: AccountRecord
    ) -> OpenedStream | UpstreamFailure | Retry:
        ctx, binding = self.ctx, self.binding
        socket = binding.socket
        if socket is None or socket.account_id != account.id or not socket.usable or _off_route(ctx, socket):
            binding.drop(ctx.sockets)
            try:
                socket = await _lease_on_route(
                    ctx,
                    ctx.sockets,
                    account.id,
                    self.pool_key,
                    _opener(ctx, self.forwarded, account, self.pool_key),
                )
            except PoolFull as exc:
                self.pool_full = True
                if exc.whole_pool:
                    raise FallBackToHttp() from None
                return NO_ROOM  # this account has no room: another one may
            except HandshakeRefused as exc:
                return await self._refused(exc, candidate, account)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return self._leaving(account, failures.classify_connection_error(exc))
            binding.socket, binding.candidate, binding.account = socket, candidate, account
            ctx.balancer.note_windows(candidate, ratelimits.from_headers(socket.headers, time.time()))
        self.trace.egress = socket.egress
        try:
            result = await _try_turn(
                ctx,
                socket,
                candidate,
                account,
                self.frame,
                self.full_frame,
                self.trace,
                self.done,
                self.for_sse,
            )
        except BaseException:  # cancelled (the client left): the socket is mid-turn, unusable
            binding.drop(ctx.sockets)
            raise
        if isinstance(result, OpenedStream):
            return result  # keeps its in-flight slot until settled
        return self._failed(account, result)

    def _failed(self, account: AccountRecord, failure: UpstreamFailure) -> UpstreamFailure | Retry:
        """What a turn that met `failure` before its first content tries next."""
        pool = self.ctx.sockets
        if failure is STALE_SOCKET:
            # A pooled or between-turns socket the backend had dropped: not the account's fault.
            self.binding.drop(pool)
            return NOT_AN_ATTEMPT
        if failure.kind is FailureKind.PREVIOUS_RESPONSE_NOT_FOUND and self.full_frame is not None:
            self.trace.last_failure = failure
            self.frame = self.full_frame  # the socket lost the anchor: replay the whole conversation here
            return SAME_ACCOUNT
        self.binding.drop(pool)
        if failure.kind is FailureKind.WEBSOCKET_EXPIRED:
            self.trace.last_failure = failure
            return SAME_ACCOUNT  # a fresh socket on the same account; the turn replays its full input
        return self._leaving(account, failure)

    def _leaving(self, account: AccountRecord, failure: UpstreamFailure) -> UpstreamFailure:
        """A failure the request's Failover acts on: unless it ends the turn, the conversation leaves the
        account (a refreshed token brings it back, bound again by the retry)."""
        if failure.allows_failover and failure.kind not in self.final:
            log.info("moving conversation off account=%d code=%s", account.id, failure.code)
            self.binding.account = self.binding.candidate = None
        return failure

    async def _refused(
        self, exc: HandshakeRefused, candidate: Candidate, account: AccountRecord
    ) -> OpenedStream | UpstreamFailure:
        """The upgrade was refused: 426 sends every turn to HTTP; anything else is asked again over HTTP
        on the same account, whose answer says what is wrong (or serves the turn)."""
        ctx = self.ctx
        ctx.balancer.note_windows(candidate, ratelimits.from_headers(exc.headers, time.time()))
        if exc.status == 426:
            ctx.transports.upgrade_refused()
            log.info("upstream refused WebSocket upgrade (426): falling back to HTTP")
            raise FallBackToHttp() from None
        log.info("upstream refused WebSocket upgrade account=%d status=%d", account.id, exc.status)
        result = await _answer_over_http(
            ctx, self.frame, self.full_frame, self.forwarded, candidate, account, self.trace
        )
        if isinstance(result, OpenedStream):
            return result
        return self._leaving(account, result or exc.failure)


async def _answer_over_http(
    ctx: ProxyContext,
    frame: dict,
    full_frame: dict | None,
    forwarded: dict[str, str],
    candidate: Candidate,
    account: AccountRecord,
    trace: Trace,
) -> OpenedStream | UpstreamFailure | None:
    """The turn as an HTTP POST on the same account, after its upgrade was refused: a refused upgrade
    carries no error body, the POST's answer does (a spent window, a burst limit, a gone account…).
    None when the turn cannot go over HTTP (a prewarm, or an anchor we cannot expand)."""
    body = full_frame if frame.get("previous_response_id") and full_frame is not None else frame
    if body.get("previous_response_id") or body.get("generate") is False:
        return None
    payload = {k: v for k, v in body.items() if k not in ("type", "generate")}
    payload["stream"] = True
    return await try_stream(
        ctx, ctx.upstream.responses_url, orjson.dumps(payload), forwarded, candidate, account, trace
    )


def _off_route(ctx: ProxyContext, socket: UpstreamSocket) -> bool:
    """A socket opened by another route than the account's current one (re-bound since, or its proxy is
    down): never reused, so a re-bound account's traffic moves to its new route at once."""
    try:
        return ctx.upstream.route(socket.account_id).label != socket.egress
    except aiohttp.ClientError:
        return True


async def _lease_on_route(ctx: ProxyContext, pool, account_id: int, pool_key: str, opener) -> UpstreamSocket:
    while True:
        socket = await pool.lease(account_id, pool_key, opener)
        if not _off_route(ctx, socket):
            return socket
        pool.give_back(socket, healthy=False)


def _opener(ctx: ProxyContext, forwarded: dict[str, str], account: AccountRecord, pool_key: str):
    return lambda: _connect(ctx, forwarded, account, pool_key)


async def _connect(
    ctx: ProxyContext, forwarded: dict[str, str], account: AccountRecord, pool_key: str
) -> UpstreamSocket:
    headers = upstream_ws.handshake_headers(forwarded, account.access_token, account.chatgpt_account_id)
    upstream = ctx.upstream
    route = upstream.route(account.id)  # raises (fail closed) when its proxy is down
    if route.session is not None:  # tunnelled through the account's own proxy, never the env proxy
        socket = await upstream_ws.connect(
            route.session, upstream.responses_ws_url, headers, account.id, pool_key
        )
        socket.egress = route.label
        return socket
    return await upstream_ws.connect(
        upstream.session, upstream.responses_ws_url, headers, account.id, pool_key, upstream.ws_proxy
    )


async def _try_turn(
    ctx: ProxyContext,
    socket: UpstreamSocket,
    candidate: Candidate,
    account: AccountRecord,
    frame: dict,
    full_frame: dict | None,
    trace: Trace,
    done: Callable[[UpstreamSocket, bool], None],
    for_sse: bool,
) -> OpenedStream | UpstreamFailure:
    previous = frame.get("previous_response_id")
    if previous and previous not in socket.responses and full_frame is not None:
        frame = full_frame  # a new socket cannot resolve the anchor: send the full input instead
    reused = socket.turns > 0
    trace.upstream_sent_mono = time.monotonic()
    try:
        await socket.send_turn(frame)
    except (aiohttp.ClientError, ConnectionError, OSError) as exc:
        socket.broken = True
        return STALE_SOCKET if reused else failures.classify_connection_error(exc)
    stream = SocketTurn(socket, done, for_sse=for_sse)
    events: list[FrameEvent] = []
    snapshot = None
    # Like HTTP attempts: a silent socket is given up on after the attempt's first-byte budget.
    first_content_by = time.monotonic() + trace.attempt_budget(ctx.settings)
    while True:
        event = await socket.next_event(max(0.001, first_content_by - time.monotonic()))
        if isinstance(event, UpstreamFailure):
            if reused and not events and event.code in _LINK_GONE:
                return STALE_SOCKET
            return event
        name = event.name
        if name == RATE_LIMITS_EVENT:
            snapshot = ratelimits.from_rate_limits_event(event.data(), time.time()) or snapshot
            ctx.balancer.note_windows(candidate, snapshot)
        if name in PRELUDE_EVENTS:
            events.append(event)
            continue
        if name in FAILURE_EVENTS:
            stream.note(event)  # the socket is ready for the next turn
            data = event.data()
            headers = data.get("headers") if isinstance(data.get("headers"), dict) else None
            return model_limits.noted(trace, failures.classify_event(data, time.time()), headers)
        stream.note(event)
        events.append(event)
        trace.first_content_mono = time.monotonic()
        shown: list[SSEEvent] = [e for e in events if stream.shown(e)]
        buffered = b"".join(e.sse() for e in shown) if for_sse else b""
        return OpenedStream(stream, candidate, account, shown, snapshot, buffered)


async def open_over_socket(
    ctx: ProxyContext,
    norm: NormalizedRequest,
    forwarded: dict[str, str],
    trace: Trace,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
) -> OpenedStream | None:
    """An HTTP client's turn on a pooled upstream socket (None: use HTTP instead). The socket goes back
    to the pool when the turn is settled, for the conversation's next request."""
    frame = orjson.loads(norm.body)
    frame.pop("stream", None)
    frame.pop("background", None)
    frame = {"type": "response.create", **frame}
    try:
        return await open_socket_stream(
            ctx,
            frame=frame,
            full_frame=None,
            forwarded=forwarded,
            session_key=norm.session_key,
            trace=trace,
            binding=Binding(),
            done=ctx.sockets.give_back,
            for_sse=True,
            allowed_accounts=allowed_accounts,
            model_plans=model_plans,
        )
    except FallBackToHttp:
        return None
