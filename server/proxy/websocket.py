"""Client WebSockets on GET /backend-api/codex/responses and /v1/responses: turns in, events out.

Each `response.create` frame (the `generate: false` prewarm too) is one turn, settled like an HTTP
request (one request-log row, transport "websocket"). The account is chosen at the first turn and kept
for the socket's life; turns go upstream over a WebSocket bound to it, or as HTTP POSTs, per the
transport setting. If the account fails before a turn's first content the conversation moves to
another account, which gets the full input (see conversation.py). Owns ClientSocket.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import orjson
from sanic import Blueprint, Request
from sanic.exceptions import ServerError, WebsocketClosed
from websockets.exceptions import ConnectionClosed

from server.auth.guard import authorize_proxy
from server.errors import BadRequest, InternalError, ProxyError
from server.keys.store import KeyRecord
from server.lifecycle import drain
from server.proxy import normalize, pipeline, pool_usage, socket_keepalive, transport, websocket_handshake
from server.proxy.assemble import OutputFiller
from server.proxy.conversation import Conversation
from server.proxy.failover import Failover
from server.proxy.outcome import Outcome
from server.proxy.outcome import drain as drain_stream
from server.proxy.settlement import Settlement
from server.proxy.socket_turns import Binding, FallBackToHttp, open_socket_stream
from server.proxy.trace import OpenedStream, Trace
from server.proxy.turn_queue import TurnQueue, worker_bytes
from server.upstream import headers
from server.upstream.events import OUTPUT_ITEM_DONE, RATE_LIMITS_EVENT, incomplete
from server.upstream.sse import SSEEvent
from server.upstream.websocket import UpstreamSocket

log = logging.getLogger(__name__)
bp = Blueprint("responses_websocket")

MAX_BAD_FRAMES = 3  # consecutive unusable frames before the socket is closed
CLOSE_IDLE = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY = 1008
_SEND_ERRORS = (ConnectionClosed, WebsocketClosed, ServerError)


async def codex_socket(request: Request):
    await _serve(request, codex=True, key=authorize_proxy(request))


async def openai_socket(request: Request):
    await _serve(request, codex=False, key=authorize_proxy(request))


# Sanic sends nothing after a handler marked as a WebSocket handler: the socket is the answer. (Through
# vars(): a function's attributes are not declared to the type checker.)
vars(codex_socket)["is_websocket"] = True
vars(openai_socket)["is_websocket"] = True
bp.add_route(codex_socket, "/backend-api/codex/responses", methods=["GET"], name="codex_responses_ws")
bp.add_route(openai_socket, "/v1/responses", methods=["GET"], name="openai_responses_ws")


async def _serve(request: Request, codex: bool, key: KeyRecord | None) -> None:
    if request.headers.get("upgrade", "").lower() != "websocket":
        raise ProxyError(
            "This endpoint takes POST requests, or a WebSocket upgrade on GET.",
            status=426,
            code="upgrade_required",
            headers={"upgrade": "websocket", "connection": "upgrade"},
        )
    # The CLI keeps the socket's turn state and echoes it if it falls back to HTTP; upstream sockets
    # opened later for this client carry the same value.
    turn_state = request.headers.get("x-codex-turn-state") or "turn_" + secrets.token_hex(16)
    ws = await websocket_handshake.accept(request, {"x-codex-turn-state": turn_state})
    client = ClientSocket(request, ws, codex, key)
    client.forwarded["x-codex-turn-state"] = turn_state
    log.info("WebSocket %s opened peer=%s", request.path, request.ip)
    try:
        await client.run()
    finally:
        client.close()
        log.info("WebSocket %s closed turns=%d", request.path, client.turns)


class ClientSocket:
    """One client WebSocket: a receiver (this task) and a worker that runs turns one at a time."""

    def __init__(self, request: Request, ws, codex: bool, key: KeyRecord | None) -> None:
        self.ctx = request.app.ctx.proxy
        self.key = key
        self.allowed_accounts = key.allowed_accounts if key else None
        self.ws = ws
        self.codex = codex
        self.route = request.path
        self.inbound = request.headers
        self.cache_scope = normalize.cache_scope(key.id if key else None, request.remote_addr or request.ip)
        self.forwarded = headers.forwardable(request.headers)
        self.conversation = Conversation()
        self.binding = Binding()
        self.session_key: str | None = None
        self.cache_key: str | None = None
        self.frames = TurnQueue(self.ctx.settings.websocket_queued_bytes, worker_bytes(request.app))
        self.busy = False
        self.turns = 0
        self.last_activity = time.monotonic()
        self.drain = request.app.ctx.drain
        drain.add_socket(self)

    @property
    def idle(self) -> bool:
        return not self.busy and self.frames.empty()

    def close_for_restart(self) -> None:
        """The server is stopping: 1012 tells the Codex CLI to reconnect (to another instance)."""
        asyncio.create_task(self._close(drain.CLOSE_SERVICE_RESTART, "Service restart"), name="ws-close-1012")

    async def run(self) -> None:
        worker = asyncio.create_task(self._work(), name="websocket-turns")
        idle = self.ctx.settings.websocket_idle_timeout_seconds
        bad_frames = 0
        try:
            while not worker.done():
                try:
                    message = await self.ws.recv(timeout=min(idle, 5.0))
                except _SEND_ERRORS:
                    return  # the client left: the worker is cancelled below, with its turn
                if message is None:
                    quiet = time.monotonic() - self.last_activity
                    if not self.busy and self.frames.empty() and quiet >= idle:
                        await self._close(CLOSE_IDLE, "Idle WebSocket timeout")
                        return
                    continue
                self.last_activity = time.monotonic()
                code = await self._accept(message)
                if code is None:
                    bad_frames = 0
                    continue
                bad_frames += 1
                if bad_frames >= MAX_BAD_FRAMES:
                    await self._close(code, "Too many invalid frames")
                    return
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    def close(self) -> None:
        drain.remove_socket(self)
        self.frames.clear()
        socket = self.binding.clear()
        if socket is not None:
            self.ctx.sockets.give_back(socket, healthy=True)

    async def _accept(self, message: str | bytes) -> int | None:
        """Queue a turn or absorb an acknowledgement; for an unusable frame, answer an error and return
        the close code to use if such frames persist."""
        if isinstance(message, bytes):
            await self._send_error(
                BadRequest("Binary frames are not supported; send JSON text.", code="invalid_frame")
            )
            return CLOSE_UNSUPPORTED_DATA
        try:
            frame = orjson.loads(message)
        except orjson.JSONDecodeError:
            frame = None
        if not isinstance(frame, dict):
            await self._send_error(
                BadRequest("Invalid request payload: expected a JSON object.", code="invalid_json")
            )
            return CLOSE_POLICY
        kind = frame.get("type")
        if kind == "response.create":
            if self.drain.draining:
                await self._send_error(
                    ProxyError(
                        "This codex-lb instance is shutting down; reconnect.",
                        status=503,
                        type="server_error",
                        code=drain.CUT_CODE,
                    )
                )
                return None
            refusal = self.frames.offer(frame, len(message))
            if refusal is not None:
                await self._send_error(
                    ProxyError(refusal.message, status=refusal.status, type=refusal.kind, code=refusal.code)
                )
                return None  # refused, not unusable: the queued turns still run
        elif kind != "response.processed":
            log.debug("ignored WebSocket frame type=%r route=%s", kind, self.route)
        return None

    async def _work(self) -> None:
        while True:
            frame = await self.frames.get()
            self.busy = True
            try:
                await self._turn(frame)
            except _SEND_ERRORS:
                raise  # the client is gone
            except Exception:  # a bug must not take the socket down: report it and carry on
                log.exception("WebSocket turn failed route=%s", self.route)
                await self._send_error(InternalError("The server had an error processing the turn."))
            finally:
                self.busy = False
                self.turns += 1
                self.last_activity = time.monotonic()
            if self.drain.draining:
                self.close_for_restart()  # the turn is done; queued ones go to the next instance
                return

    async def _turn(self, frame: dict) -> None:
        model = frame.get("model")
        if not isinstance(model, str):
            model = ""
        done = Settlement(
            self.ctx,
            self.route,
            "websocket",
            model=model,
            session_key=self.session_key,
            api_key_id=self.key.id if self.key else None,
            report=self._report,
        )
        done.outcome = outcome = Outcome()  # so a drain deadline can mark the turn as cut
        await pipeline.serve(done, self.key, _TurnSteps(self, frame, outcome))

    async def _open(self, done: Settlement, turn: _Turn, model_plans) -> OpenedStream | None:
        """The turn's upstream stream: on the conversation's upstream socket when the transport choice
        says so (and one can be had), else over HTTP; None for a prewarm that has no socket to warm."""
        ctx = self.ctx
        choice = ctx.transports.choose(
            ctx.runtime.current.upstream_stream_transport, client_websocket=True, model=done.model
        )
        if choice == transport.WEBSOCKET:
            try:
                opened = await self._open_socket(turn, done.trace, model_plans)
            except FallBackToHttp:
                pass
            else:
                done.upstream_transport = transport.WEBSOCKET
                return opened
        if turn.prewarm:
            return None
        failover = Failover(ctx, done.trace, self.session_key, self.allowed_accounts, model_plans)
        return await failover.open_stream(ctx.upstream.responses_url, turn.http_body, self.forwarded)

    async def _report(self, exc: ProxyError) -> bool:
        """A turn's error is an error frame; the socket stays open for the next turn."""
        await self._send_error(exc)
        return True

    def _prepare(self, frame: dict) -> _Turn:
        body = {k: v for k, v in frame.items() if k != "type"}
        if not self.codex and self.cache_key and not body.get("prompt_cache_key"):
            body["prompt_cache_key"] = self.cache_key  # keep the first turn's key for the whole socket
        full_input = self.conversation.full_input(body)
        full_body = self.conversation.full_frame(body)
        norm = self._normalize(body)
        if self.session_key is None:
            self.session_key = norm.session_key
        if self.cache_key is None:
            self.cache_key = orjson.loads(norm.body).get("prompt_cache_key")
        full_norm = self._normalize(full_body) if full_body is not None else None
        if full_input is None and not body.get("previous_response_id"):
            full_input = orjson.loads(norm.body).get("input")  # a string input, expanded
        http_source = full_norm or norm
        http_body = orjson.loads(http_source.body)
        http_body.pop("generate", None)
        return _Turn(
            frame=_ws_frame(norm.body),
            full_frame=_ws_frame(full_norm.body) if full_norm is not None else None,
            http_body=orjson.dumps(http_body),
            full_input=full_input,
            prewarm=frame.get("generate") is False,
            effort=norm.reasoning_effort,
        )

    def _normalize(self, body: dict) -> normalize.NormalizedRequest:
        raw = orjson.dumps(body)
        if self.codex:
            return normalize.normalize_codex(raw, self.inbound)
        return normalize.normalize_openai(raw, self.inbound, self.cache_scope)

    async def _open_socket(self, turn: _Turn, trace: Trace, model_plans) -> OpenedStream:
        return await open_socket_stream(
            self.ctx,
            frame=turn.frame,
            full_frame=turn.full_frame,
            forwarded=self.forwarded,
            session_key=self.session_key,
            trace=trace,
            binding=self.binding,
            done=self._socket_done,
            # Upstream sockets carry this client's turn state: reuse one only for the same turn state.
            pool_key=f"{self.session_key or ''}|{self.forwarded['x-codex-turn-state']}",
            allowed_accounts=self.allowed_accounts,
            model_plans=model_plans,
        )

    def _socket_done(self, socket: UpstreamSocket, healthy: bool) -> None:
        """A turn ended on the bound socket: keep it for the next turn, or drop it if it was cut short."""
        if not healthy and self.binding.socket is socket:
            self.binding.clear()
            self.ctx.sockets.give_back(socket, healthy=False)

    async def _relay(self, opened: OpenedStream, outcome: Outcome) -> list[SSEEvent]:
        """Send the turn's events as text frames until its terminal event; return the output items."""
        produced: list[SSEEvent] = []
        filler = None if self.codex else OutputFiller()  # SDK clients get the output in the terminal event

        async def forward(event: SSEEvent) -> None:
            if event.name == RATE_LIMITS_EVENT:  # the pool's windows for this client, not the account's
                data = event.data()
                now = time.time()
                shown = pool_usage.rate_limits_event(self.ctx, self.key, self.allowed_accounts, data, now)
                if shown is None:
                    return
                if shown is not data:
                    await self.ws.send(orjson.dumps(shown).decode())
                    return
            if event.name == OUTPUT_ITEM_DONE:
                produced.append(event)
            filled = filler.fill(event) if filler is not None else None
            if filled is not None:
                await self.ws.send(orjson.dumps(filled).decode())
            else:
                await self.ws.send(event.payload_text())

        async def forward_all(chunk: bytes, events: list[SSEEvent]) -> None:
            for event in events:
                await forward(event)

        if not await drain_stream(opened, outcome, forward_all):
            await self.ws.send(orjson.dumps(incomplete(outcome.response_id, outcome.error_code)).decode())
        return produced

    async def _prewarm_locally(self, turn: _Turn, outcome: Outcome) -> None:
        """HTTP upstreams have no socket to warm: answer the prewarm here, with an id we can resolve (it
        used nothing: no usage is recorded)."""
        response_id = "resp_" + secrets.token_hex(16)
        response = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": turn.frame.get("model"),
            "output": [],
        }
        await self.ws.send(orjson.dumps({"type": "response.created", "response": response}).decode())
        completed = {**response, "status": "completed", "usage": None}
        await self.ws.send(orjson.dumps({"type": "response.completed", "response": completed}).decode())
        outcome.terminal_seen, outcome.response_id = True, response_id
        self.conversation.record(response_id, turn.full_input, [])

    async def _send_error(self, error: ProxyError) -> None:
        try:
            await self.ws.send(error.ws_frame())
        except _SEND_ERRORS:
            pass

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except _SEND_ERRORS:
            pass


class _TurnSteps:
    """A turn's steps: parsed inside its settlement (a bad frame is a settled turn that the client hears
    of as an error frame), relayed as text frames, remembered by the conversation once complete."""

    __slots__ = ("client", "frame", "outcome", "turn")
    checks_model = True

    def __init__(self, client: ClientSocket, frame: dict, outcome: Outcome) -> None:
        self.client, self.frame, self.outcome = client, frame, outcome
        self.turn: _Turn | None = None  # set by prepare(), which pipeline.serve calls first

    def prepare(self, done: Settlement) -> int | None:
        """Each turn is admitted against the key's limits like one HTTP request; a prewarm generates
        nothing and is only checked against the key's model rules."""
        client = self.client
        turn = self.turn = client._prepare(self.frame)
        done.session_key, done.reasoning_effort = client.session_key, turn.effort
        return None if turn.prewarm else len(turn.http_body)

    def keepalive(self):
        client = self.client
        return socket_keepalive.while_opening(client.ws, client.ctx.settings.stream_keepalive_s, client.codex)

    async def open(self, done: Settlement, model_plans: frozenset[str] | None) -> OpenedStream | None:
        assert self.turn is not None, "prepare() ran first"
        return await self.client._open(done, self.turn, model_plans)

    async def deliver(self, done: Settlement, opened: OpenedStream | None) -> None:
        client, turn, outcome = self.client, self.turn, self.outcome
        assert turn is not None, "prepare() ran first"
        if opened is None:
            await client._prewarm_locally(turn, outcome)
            return
        produced = await client._relay(opened, outcome)
        if outcome.terminal_seen and outcome.status == 200:
            client.conversation.record(outcome.response_id, turn.full_input, produced)


class _Turn:
    __slots__ = ("frame", "full_frame", "http_body", "full_input", "prewarm", "effort")

    def __init__(self, frame, full_frame, http_body, full_input, prewarm, effort) -> None:
        self.frame = frame
        self.full_frame = full_frame
        self.http_body = http_body
        self.full_input = full_input
        self.prewarm = prewarm
        self.effort = effort


def _ws_frame(body: bytes) -> dict:
    """A normalised Responses body as the backend takes it over a WebSocket."""
    frame = orjson.loads(body)
    frame.pop("stream", None)
    frame.pop("background", None)
    return {"type": "response.create", **frame}
