"""Opening a turn on an upstream WebSocket, failing over invisibly until content arrives.

The WebSocket twin of Failover.open_stream, driving the same Failover (account choice, cooldowns, token
refresh, attempt budget), plus what sockets add: a socket stays bound to its account (response ids live
on it), a turn whose `previous_response_id` the socket does not know is replayed with the full input,
and an expired socket (60-minute limit) is replaced on the same account without the client noticing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial

import aiohttp
import orjson

from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.errors import ProxyError
from server.proxy import model_limits
from server.proxy.attempts import try_stream
from server.proxy.context import ProxyContext
from server.proxy.failover import Failover
from server.proxy.normalize import NormalizedRequest
from server.proxy.trace import OpenedStream, Trace
from server.upstream import failures, ratelimits
from server.upstream import websocket as upstream_ws
from server.upstream.events import FAILURE_EVENTS, PRELUDE_EVENTS, RATE_LIMITS_EVENT, STREAM_INCOMPLETE
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.websocket import FrameEvent, HandshakeRefused, SocketTurn, UpstreamSocket
from server.upstream.websocket_pool import PoolFull

log = logging.getLogger(__name__)


# The link of a socket that had served turns before died before this turn's first event.
STALE_SOCKET = UpstreamFailure(
    FailureKind.TRANSIENT, None, "stale_socket", "upstream WebSocket was closed while idle", 502
)
_LINK_GONE = frozenset({STREAM_INCOMPLETE, "upstream_unavailable"})


class FallBackToHttp(Exception):
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
    opening = _SocketFailover(
        ctx, failover, binding, forwarded, pool_key if pool_key is not None else session_key or ""
    )
    return await opening.open(frame, full_frame, done, for_sse)


class _SocketFailover:
    """One turn's failover on sockets: the request's Failover, plus what sockets add (binding, pool
    room, stale links, replays)."""

    def __init__(
        self,
        ctx: ProxyContext,
        failover: Failover,
        binding: Binding,
        forwarded: dict[str, str],
        pool_key: str,
    ) -> None:
        self.ctx = ctx
        self.failover = failover
        self.trace = failover.trace
        self.binding = binding
        self.forwarded = forwarded
        self.pool_key = pool_key
        self.pool_full = False
        self.pinned = binding.account is not None  # a bound conversation stays on its account while it can

    async def open(
        self,
        frame: dict,
        full_frame: dict | None,
        done: Callable[[UpstreamSocket, bool], None],
        for_sse: bool,
    ) -> OpenedStream:
        ctx, trace, binding, pool = self.ctx, self.trace, self.binding, self.ctx.sockets
        while self.failover.attempts_left and trace.attempt_budget(ctx.settings) > 0:
            if binding.socket is None or not binding.socket.usable or _off_route(ctx, binding.socket):
                answered = await self._bind(frame, full_frame)
                if answered is not None:
                    return answered  # the account serves HTTP only: this turn went that way
                if binding.socket is None:
                    continue
            socket, candidate, account = binding.socket, binding.candidate, binding.account
            trace.attempts += 1
            trace.egress = socket.egress
            try:
                result = await self.failover.attempt(
                    candidate,
                    account,
                    partial(_try_turn, ctx, socket, candidate, frame, full_frame, trace, done, for_sse),
                )
            except BaseException:  # cancelled (the client left): the socket is mid-turn, unusable
                pool.give_back(binding.clear(), healthy=False)
                raise
            if isinstance(result, OpenedStream):
                return result  # keeps its in-flight slot until settled
            failure = result
            if failure is STALE_SOCKET:
                # A pooled or between-turns socket the backend had dropped: not the account's fault.
                pool.give_back(binding.clear(), healthy=False)
                trace.attempts -= 1
                continue
            trace.last_failure = failure
            if failure.kind is FailureKind.PREVIOUS_RESPONSE_NOT_FOUND and full_frame is not None:
                frame = full_frame  # the socket lost the anchor: replay the whole conversation here
                continue
            pool.give_back(binding.clear(), healthy=False)
            if failure.kind is FailureKind.WEBSOCKET_EXPIRED:
                continue  # a fresh socket on the same account; the turn replays its full input
            if await self._after_failure(candidate, account, failure):
                self.pinned = True  # refreshed: the same account again, without spending an attempt
                trace.attempts -= 1
                continue
            binding.account = binding.candidate = None
            self.pinned = False
        raise self.failover.exhausted()

    async def _bind(self, frame: dict, full_frame: dict | None) -> OpenedStream | None:
        """Bind a socket of the conversation's account (or of a newly chosen one). Leaves the binding
        without a socket when this account cannot have one now; returns the turn's stream when the
        account refused the upgrade and served the turn over HTTP instead."""
        ctx, trace, binding = self.ctx, self.trace, self.binding
        stale = binding.clear()
        if stale is not None:
            ctx.sockets.give_back(stale, healthy=False)
        if (
            self.pinned
            and binding.account.id not in self.failover.excluded
            and ctx.roster.get(binding.account.id)
        ):
            candidate, account = binding.candidate, ctx.roster.get(binding.account.id)
        else:
            try:
                candidate, account = await self.failover.choose()
            except ProxyError:
                if self.pool_full:
                    raise FallBackToHttp() from None
                raise
        try:
            binding.socket = await _lease_on_route(
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
            self.failover.excluded.add(account.id)  # this account has no room: another one may
            self.pinned = False
            return None
        except HandshakeRefused as exc:
            return await self._refused(exc, candidate, account, frame, full_frame)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            trace.attempts += 1
            trace.account = account
            await self._after_failure(candidate, account, failures.classify_connection_error(exc))
            self.pinned = False
            return None
        binding.candidate, binding.account = candidate, account
        ctx.balancer.note_windows(candidate, ratelimits.from_headers(binding.socket.headers, time.time()))
        return None

    async def _refused(
        self,
        exc: HandshakeRefused,
        candidate: Candidate,
        account: AccountRecord,
        frame: dict,
        full_frame: dict | None,
    ) -> OpenedStream | None:
        """The upgrade was refused: 426 sends every turn to HTTP; anything else is asked again over HTTP
        on the same account, whose answer says what is wrong (or serves the turn)."""
        ctx, trace = self.ctx, self.trace
        ctx.balancer.note_windows(candidate, ratelimits.from_headers(exc.headers, time.time()))
        if exc.status == 426:
            ctx.transports.upgrade_refused()
            log.info("upstream refused WebSocket upgrade (426): falling back to HTTP")
            raise FallBackToHttp() from None
        log.info("upstream refused WebSocket upgrade account=%d status=%d", account.id, exc.status)
        trace.attempts += 1
        result = await self.failover.attempt(
            candidate,
            account,
            partial(_answer_over_http, ctx, frame, full_frame, self.forwarded, candidate, account, trace),
        )
        if isinstance(result, OpenedStream):
            return result
        if await self._after_failure(candidate, account, result or exc.failure):
            # Refreshed: the same account again, with its new token, without spending an attempt.
            self.binding.candidate, self.binding.account, self.pinned = candidate, account, True
            trace.attempts -= 1
            return None
        self.pinned = False
        return None

    async def _after_failure(
        self, candidate: Candidate, account: AccountRecord, failure: UpstreamFailure
    ) -> bool:
        """True when the same account should be tried again (token refreshed); raises for client errors
        (a lost anchor included: nothing here can replay it)."""
        if await self.failover.after_failure(candidate, account, failure, final=_ENDS_THE_TURN) is not None:
            return True
        log.info("moving conversation off account=%d code=%s", account.id, failure.code)
        return False


_ENDS_THE_TURN = (FailureKind.PREVIOUS_RESPONSE_NOT_FOUND,)


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
        shown = [e for e in events if stream.shown(e)]
        buffered = b"".join(e.sse() for e in shown) if for_sse else b""
        return OpenedStream(stream, candidate, trace.account, shown, snapshot, buffered)


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
