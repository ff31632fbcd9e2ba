"""Builds one Response JSON from a Responses event stream, for clients that asked for `stream: false`.

The backend's terminal event often carries an empty `output`: the items come from the
`response.output_item.done` events, in output-index order.
"""

from __future__ import annotations

from server.upstream.events import FILLED_EVENTS, OUTPUT_ITEM_DONE, TERMINAL_EVENTS
from server.upstream.sse import SSEEvent, encode_event


class OutputItems:
    """The items of a stream's `response.output_item.done` events, by output index."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[int, dict] = {}

    def note(self, event: SSEEvent) -> bool:
        """True when `event` was an output item (noted)."""
        if event.name != OUTPUT_ITEM_DONE:
            return False
        data = event.data()
        item = data.get("item")
        if isinstance(item, dict):
            self._items[int(data.get("output_index", len(self._items)))] = item
        return True

    def __bool__(self) -> bool:
        return bool(self._items)

    def in_order(self) -> list[dict]:
        return [self._items[i] for i in sorted(self._items)]


class ResponseAssembler:
    __slots__ = ("_items", "terminal")

    def __init__(self) -> None:
        self._items = OutputItems()
        self.terminal: dict | None = None

    def add(self, event: SSEEvent) -> None:
        if not self._items.note(event) and event.name in TERMINAL_EVENTS:
            self.terminal = event.data()

    def response(self) -> dict | None:
        if self.terminal is None:
            return None
        response = self.terminal.get("response")
        if not isinstance(response, dict):
            return None
        response = dict(response)
        if not response.get("output"):
            response["output"] = self._items.in_order()
        return response


class OutputFiller:
    """For /v1 streaming clients (OpenAI SDKs): fills the terminal event's empty `output` with the
    items of this stream's `response.output_item.done` events, in output-index order, as the public
    Responses API does. An `output` the upstream filled is left alone; Codex routes never use this (the
    CLI expects the backend's bytes)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items = OutputItems()

    def fill(self, event: SSEEvent) -> dict | None:
        """The event's payload with its output filled in when it needs that; None to pass it unchanged."""
        if self._items.note(event) or event.name not in FILLED_EVENTS or not self._items:
            return None
        data = event.data()
        response = data.get("response")
        if isinstance(response, dict) and not response.get("output"):
            response["output"] = self._items.in_order()
            return data
        return None

    def sse(self, events: list[SSEEvent]) -> bytes:
        """The events as SSE bytes: each one's own bytes, or the filled terminal event re-encoded."""
        parts = []
        for event in events:
            data = self.fill(event)
            parts.append(event.sse() if data is None else encode_event(data, event.name))
        return b"".join(parts)
