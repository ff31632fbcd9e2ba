"""Responses stream events by name: which ones open a stream, end it or fail it; the `data:` payload of an
SSE event; and the `response.failed` event that ends a stream the upstream left unfinished.

Owns the event-name sets (HTTP SSE and WebSocket frames use the same names) and the codes an unfinished
stream is reported with.
"""

from __future__ import annotations

# Events that may precede content; anything else means the account has started answering.
PRELUDE_EVENTS = frozenset({"response.created", "response.in_progress", "codex.rate_limits"})
FAILURE_EVENTS = frozenset({"response.failed", "error"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
# Terminal events whose `response` the public Responses API sends with the whole output.
FILLED_EVENTS = frozenset({"response.completed", "response.incomplete"})
RATE_LIMITS_EVENT = "codex.rate_limits"  # sent only on sockets; SSE clients learn windows from headers
OUTPUT_ITEM_DONE = "response.output_item.done"

STREAM_INCOMPLETE = "stream_incomplete"  # the upstream went away before the terminal event
CUT_CODE = "server_shutting_down"  # this server cut the stream at its drain deadline


def is_terminal(name: str) -> bool:
    return name in TERMINAL_EVENTS


def sse_data(raw: bytes) -> bytes:
    """The payload of one SSE event block: its `data:` lines, joined."""
    return b"\n".join(line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:"))


def incomplete_message(code: str) -> str:
    if code == CUT_CODE:
        return "The server is shutting down and cut the stream at its drain deadline; retry the request."
    return "The upstream stream ended before the response completed."


def response_failed(response_id: str, code: str, message: str, sequence_number: int | None = None) -> dict:
    """A `response.failed` event: how a stream whose head has gone out reports an error."""
    event: dict = {"type": "response.failed"}
    if sequence_number is not None:
        event["sequence_number"] = sequence_number
    event["response"] = {
        "id": response_id,
        "object": "response",
        "status": "failed",
        "error": {"code": code, "message": message},
    }
    return event


def incomplete(response_id: str, code: str = STREAM_INCOMPLETE, sequence_number: int | None = None) -> dict:
    """The `response.failed` event of a stream that ended without its terminal event."""
    return response_failed(response_id, code, incomplete_message(code), sequence_number)
