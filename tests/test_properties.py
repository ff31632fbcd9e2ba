"""Property-based tests (hypothesis) of the code that reads what clients and the backend send: the
request translators, the SSE scanner and the client WebSocket's frame handling. Whatever arrives, the
answer is a result or a ProxyError (the route's 4xx), never another exception."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import ProxyError
from server.proxy import chat_request, normalize
from server.proxy.turn_queue import QueuedBytes, TurnQueue
from server.proxy.websocket import ClientSocket
from server.upstream.sse import SSEScanner

# HYPOTHESIS_EXAMPLES=2000 for a deeper run than the suite's.
FAST = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
# Bodies shaped like requests (known keys with any values) and arbitrary ones.
KEYS = ["model", "input", "messages", "instructions", "tools", "tool_choice", "stream", "reasoning", "text",
        "include", "store", "prompt_cache_key", "previous_response_id", "max_tokens", "n", "stop",
        "response_format", "temperature", "stream_options", "role", "content", "type", "user"]
request_like = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)
headers = st.dictionaries(
    st.sampled_from(["session-id", "session_id", "x-codex-turn-state", "originator", "user-agent"]),
    st.text(max_size=30),
    max_size=3,
)


def _raw(value) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return orjson.dumps(str(value))


@FAST
@given(body=request_like | json_values, head=headers, model=st.sampled_from(["gpt-5.4", "", None, 5]))
def test_translators_answer_a_result_or_a_client_error(body, head, model):
    if isinstance(body, dict) and model is not None:
        body = {**body, "model": model}
    raw = _raw(body)
    for translate in (
        lambda: chat_request.translate(raw, head),
        lambda: normalize.normalize_openai(raw, head, "key:1"),
        lambda: normalize.normalize_codex(raw, head),
    ):
        try:
            result = translate()
        except ProxyError as exc:
            assert 400 <= exc.status < 500
        else:
            assert orjson.loads(result.body)["model"]  # what goes upstream is JSON with a model


@FAST
@given(raw=st.binary(max_size=200))
def test_translators_take_any_bytes(raw):
    for translate in (chat_request.translate, normalize.normalize_openai, normalize.normalize_codex):
        try:
            translate(raw, {})
        except ProxyError as exc:
            assert 400 <= exc.status < 500


events = st.lists(
    st.tuples(
        st.text(alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12),
        st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
    ),
    min_size=1,
    max_size=6,
)


@FAST
@given(stream=events, newline=st.sampled_from([b"\n", b"\r\n"]), cuts=st.lists(st.integers(0, 10_000)))
def test_sse_scanner_finds_the_same_events_however_the_bytes_are_cut(stream, newline, cuts):
    raw = b"".join(
        b"event: " + name.encode() + newline + b"data: " + orjson.dumps(data) + newline + newline
        for name, data in stream
    )
    whole = [(e.name, e.data()) for e in SSEScanner().feed(raw)]
    assert whole == [(name, data) for name, data in stream]
    scanner = SSEScanner()
    pieces, start = [], 0
    for cut in sorted({c % (len(raw) + 1) for c in cuts}):
        pieces.append(raw[start:cut])
        start = cut
    pieces.append(raw[start:])
    chunked = [(e.name, e.data()) for piece in pieces for e in scanner.feed(piece)]
    assert chunked == whole
    assert scanner.pending == b""


@FAST
@given(raw=st.binary(max_size=300))
def test_sse_scanner_takes_any_bytes(raw):
    scanner = SSEScanner()
    for event in scanner.feed(raw[: len(raw) // 2]) + scanner.feed(raw[len(raw) // 2 :]):
        assert isinstance(event.data(), dict)
        assert isinstance(event.name, str)


class _RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


def _client_socket() -> ClientSocket:
    socket = ClientSocket.__new__(ClientSocket)
    socket.ws = _RecordingSocket()
    socket.route = "/backend-api/codex/responses"
    socket.frames = TurnQueue(64 * 1024, QueuedBytes(256 * 1024))
    socket.drain = SimpleNamespace(draining=False)
    return socket


frames = (
    st.text(max_size=200)
    | st.binary(max_size=100)
    | json_values.map(lambda v: _raw(v).decode())
    | request_like.map(lambda v: _raw({"type": "response.create", **v}).decode())
    | st.sampled_from(['{"type": "response.processed", "response_id": "r"}', '{"type": 7}', "[]", "null"])
)


@FAST
@given(messages=st.lists(frames, min_size=1, max_size=12))
def test_websocket_frames_are_queued_refused_or_answered_never_raised(messages):
    socket = _client_socket()

    async def feed() -> list[int | None]:
        return [await socket._accept(message) for message in messages]

    codes = asyncio.run(feed())
    for message, code in zip(messages, codes, strict=True):
        assert code in (None, 1003, 1008), (message, code)
    for text in socket.ws.sent:
        error = orjson.loads(text)
        assert error["type"] == "error" and 400 <= error["status"] < 600
    assert socket.frames.qsize() <= 8 and socket.frames.bytes <= 64 * 1024 + max(map(len, messages))


@FAST
@given(
    turns=st.lists(request_like.map(lambda v: {"model": "gpt-5.4", **v}), min_size=1, max_size=3),
    codex=st.booleans(),
)
def test_websocket_turns_are_prepared_or_refused_as_client_errors(turns, codex):
    """What a queued response.create frame becomes before it goes upstream (both routes)."""
    from server.proxy.conversation import Conversation

    socket = _client_socket()
    socket.codex, socket.inbound, socket.conversation = codex, {}, Conversation()
    socket.session_key = socket.cache_key = None
    socket.cache_scope = "key:1"
    for frame in turns:
        try:
            frame = orjson.loads(_raw(frame))
        except orjson.JSONDecodeError:
            continue
        if not isinstance(frame, dict):
            continue
        try:
            turn = socket._prepare(frame)
        except ProxyError as exc:
            assert 400 <= exc.status < 500
        else:
            assert turn.frame["type"] == "response.create" and orjson.loads(turn.http_body)
