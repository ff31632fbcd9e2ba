"""Incremental Server-Sent-Events scanner: splits a byte stream into events without decoding them.

Only the `event:` name is read per event; the JSON `data` is decoded on demand, so pass-through
routes never pay for parsing events they do not need.
"""

from __future__ import annotations

import orjson

from server.upstream.events import sse_data


class SSEEvent:
    __slots__ = ("raw", "name", "_data")

    def __init__(self, raw: bytes, name: str) -> None:
        self.raw = raw
        self.name = name
        self._data: dict | None = None

    def data(self) -> dict:
        if self._data is None:
            self._data = _decode_data(self.raw)
        return self._data

    def sse(self) -> bytes:
        """The event as SSE bytes (as the upstream sent them)."""
        return self.raw

    def payload_text(self) -> str:
        """The event's JSON as text: what a WebSocket client gets as one frame."""
        return sse_data(self.raw).decode("utf-8", "replace")


def _decode_data(raw: bytes) -> dict:
    payload = sse_data(raw)
    if not payload:
        return {}
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class SSEScanner:
    """Feed chunks as they arrive; get back the complete events they finish."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in chunk or self._buffer.endswith(b"\r"):
            # On the joined buffer: a CRLF may be cut between two chunks (a lone CR at the end waits).
            buffer = buffer.replace(b"\r\n", b"\n")
        events = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            block = buffer[start : end + 2]
            start = end + 2
            if block.strip():
                events.append(SSEEvent(block, _event_name(block)))
        self._buffer = buffer[start:]
        return events

    @property
    def pending(self) -> bytes:
        return self._buffer


def _event_name(block: bytes) -> str:
    if block.startswith(b"event:"):
        line_end = block.find(b"\n")
        return block[6:line_end].strip().decode("ascii", "replace")
    index = block.find(b"\nevent:")
    if index >= 0:
        line_end = block.find(b"\n", index + 1)
        return block[index + 7 : line_end].strip().decode("ascii", "replace")
    # No event line (allowed by SSE): fall back to the JSON "type".
    return str(_decode_data(block).get("type", "message"))


def encode_event(payload: dict, name: str | None = None) -> bytes:
    """An event the proxy creates or rewrites (errors, translated chunks, filled terminal events)."""
    return b"event: " + (name or payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
