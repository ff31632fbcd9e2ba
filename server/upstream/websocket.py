"""Upstream WebSockets to the ChatGPT backend: the handshake, one turn's events, and an SSE-shaped view.

Owns UpstreamSocket (one `GET …/codex/responses` upgrade, bound to one account; response ids live on
it), reading a turn frame by frame, and SocketTurn, one turn read as an UpstreamStream
(server.upstream.stream) like an HTTP answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from server.upstream import failures
from server.upstream.events import RATE_LIMITS_EVENT, is_terminal
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.sse import SSEEvent

BETA_TOKEN = "responses_websockets=2026-02-06"
CONNECT_TIMEOUT_S = 8.0
STREAM_IDLE_TIMEOUT_S = 300.0  # silence allowed between frames of a turn (the CLI's own idle timeout)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a response.completed can carry the whole output
# Request headers that describe the HTTP request, not the WebSocket handshake.
_NOT_ON_HANDSHAKE = frozenset({"accept", "content-type", "content-length", "content-encoding"})


class HandshakeRefused(Exception):
    """The upstream answered the upgrade with an HTTP status (426: no WebSockets here, use HTTP)."""

    def __init__(self, status: int, failure: UpstreamFailure, headers: dict[str, str]) -> None:
        super().__init__(f"upstream refused the WebSocket upgrade with {status}")
        self.status = status
        self.failure = failure
        self.headers = headers


def websocket_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url


def handshake_headers(forwarded: dict[str, str], access_token: str, chatgpt_account_id: str) -> dict:
    """The client's forwardable headers, our account's credentials, and the WebSocket beta token."""
    out = {name: value for name, value in forwarded.items() if name not in _NOT_ON_HANDSHAKE}
    out["authorization"] = f"Bearer {access_token}"
    out["chatgpt-account-id"] = chatgpt_account_id
    tokens = [t.strip() for t in out.get("openai-beta", "").split(",") if t.strip()]
    tokens = [t for t in tokens if t != "responses=experimental" and not t.startswith("responses_websockets")]
    out["openai-beta"] = ",".join([*tokens, BETA_TOKEN])
    return out


class FrameEvent(SSEEvent):
    """One upstream frame: its JSON text (relayed as is to WebSocket clients), decoded only on demand.

    The backend writes "type" first, so the name is read without parsing the frame; most frames (text
    deltas) are never decoded.
    """

    __slots__ = ("text",)

    def __init__(self, text: str, name: str, data: dict | None = None) -> None:
        super().__init__(b"", name)
        self.text = text
        self._data = data

    @classmethod
    def parse(cls, text: str) -> FrameEvent | None:
        """The event in a text frame; None for a frame that is not a JSON object."""
        if text.startswith(_TYPE_PREFIX):
            end = text.find('"', len(_TYPE_PREFIX))
            name = text[len(_TYPE_PREFIX) : end]
            if end > 0 and "\\" not in name:
                return cls(text, name)
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        kind = data.get("type")
        return cls(text, kind if isinstance(kind, str) else "", data)

    def data(self) -> dict:
        if self._data is None:
            try:
                value = orjson.loads(self.text)
            except orjson.JSONDecodeError:
                value = None
            self._data = value if isinstance(value, dict) else {}
        return self._data

    def sse(self) -> bytes:
        return b"event: " + self.name.encode() + b"\ndata: " + self.text.encode() + b"\n\n"

    def payload_text(self) -> str:
        return self.text


_TYPE_PREFIX = '{"type":"'


@dataclass(eq=False, slots=True)
class UpstreamSocket:
    """One upstream WebSocket; `responses` are the ids it can resolve as previous_response_id."""

    ws: aiohttp.ClientWebSocketResponse
    account_id: int
    key: str
    headers: dict[str, str]
    opened_mono: float = field(default_factory=time.monotonic)
    last_used_mono: float = field(default_factory=time.monotonic)
    turns: int = 0
    responses: set[str] = field(default_factory=set)
    broken: bool = False
    egress: str = ""  # the route it was opened through: "" direct, "proxy:<name>"

    @property
    def usable(self) -> bool:
        return not (self.broken or self.ws.closed)

    async def send_turn(self, frame: dict) -> None:
        self.turns += 1
        self.last_used_mono = time.monotonic()
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def next_event(self, idle_timeout: float = STREAM_IDLE_TIMEOUT_S) -> FrameEvent | UpstreamFailure:
        """The next event frame, or why the socket cannot give one (closed, broken, silent too long)."""
        while True:
            try:
                message = await self.ws.receive(timeout=idle_timeout)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.broken = True
                return failures.classify_connection_error(exc)
            if message.type is aiohttp.WSMsgType.TEXT:
                event = FrameEvent.parse(message.data)
                if event is None:
                    continue  # not an event; the backend only sends JSON objects
                self.last_used_mono = time.monotonic()
                return event
            if message.type is aiohttp.WSMsgType.BINARY:
                continue
            self.broken = True
            return UpstreamFailure(
                FailureKind.TRANSIENT,
                None,
                "stream_incomplete",
                "upstream WebSocket closed before the response completed",
                502,
            )

    async def close(self) -> None:
        self.broken = True
        if not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.close(), 2.0)
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass


async def connect(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    account_id: int,
    key: str,
    proxy: tuple[Any, aiohttp.BasicAuth | None] | None = None,
) -> UpstreamSocket:
    """Open a socket; raises HandshakeRefused for an HTTP answer, aiohttp/timeout errors for a broken link.
    `proxy`: (proxy URL, auth) to tunnel the handshake through, or None for a direct connection."""
    try:
        ws = await asyncio.wait_for(
            session.ws_connect(
                url,
                headers=headers,
                proxy=proxy[0] if proxy else None,
                proxy_auth=proxy[1] if proxy else None,
                max_msg_size=MAX_MESSAGE_BYTES,
                autoping=True,
                compress=0,  # the backend is not offered permessage-deflate
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            ),
            CONNECT_TIMEOUT_S,
        )
    except aiohttp.WSServerHandshakeError as exc:
        answer = dict(exc.headers or {})
        raise HandshakeRefused(
            exc.status, failures.classify_http(exc.status, exc.message.encode(), time.time()), answer
        ) from None
    return UpstreamSocket(ws, account_id, key, dict(ws._response.headers))


# The backend sends codex.rate_limits only on sockets; SSE clients learn the windows from headers.
NOT_FOR_SSE_CLIENTS = frozenset({RATE_LIMITS_EVENT})


class SocketTurn:
    """One turn on an upstream socket, read as an UpstreamStream: each remaining frame is one chunk holding
    one event, until the terminal event. `release()` ends the turn and hands the socket to `done` (kept
    when the turn finished, thrown away when it was cut short). `for_sse`: the reader is an SSE client,
    which gets each frame as SSE bytes and not the socket-only events; a WebSocket client gets the
    frames as they are (no bytes are built for it)."""

    __slots__ = ("socket", "finished", "for_sse", "_done", "_released")

    def __init__(
        self,
        socket: UpstreamSocket,
        done: Callable[[UpstreamSocket, bool], None],
        *,
        for_sse: bool = False,
    ) -> None:
        self.socket = socket
        self.finished = False
        self.for_sse = for_sse
        self._done = done
        self._released = False

    @property
    def headers(self) -> Mapping[str, str]:
        return self.socket.headers

    def shown(self, event: FrameEvent) -> bool:
        """Whether the turn's reader is sent this event."""
        return not self.for_sse or event.name not in NOT_FOR_SSE_CLIENTS

    def note(self, event: FrameEvent) -> None:
        if is_terminal(event.name):
            self.finished = True
            response = event.data().get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.socket.responses.add(response["id"])

    async def chunks(self) -> AsyncIterator[tuple[bytes, list[SSEEvent]]]:
        while not self.finished:
            event = await self.socket.next_event()
            if isinstance(event, UpstreamFailure):
                return  # the reader sees no terminal event: stream_incomplete
            self.note(event)
            if not self.for_sse:
                yield b"", [event]
            elif event.name not in NOT_FOR_SSE_CLIENTS:
                yield event.sse(), [event]

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._done(self.socket, self.finished and self.socket.usable)

    def cut(self) -> None:
        asyncio.create_task(self.socket.close(), name="drain-cut-socket")
