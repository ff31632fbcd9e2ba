"""Builds one Response JSON from a Responses event stream, for clients that asked for `stream: false`.

The backend's terminal event often carries an empty `output`: the items come from the
`response.output_item.done` events, in output-index order.
"""

from __future__ import annotations

from server.upstream.sse import SSEEvent


class ResponseAssembler:
    __slots__ = ("_items", "terminal")

    def __init__(self) -> None:
        self._items: dict[int, dict] = {}
        self.terminal: dict | None = None

    def add(self, event: SSEEvent) -> None:
        name = event.name
        if name == "response.output_item.done":
            data = event.data()
            item = data.get("item")
            if isinstance(item, dict):
                self._items[int(data.get("output_index", len(self._items)))] = item
        elif name in ("response.completed", "response.incomplete", "response.failed", "error"):
            self.terminal = event.data()

    def response(self) -> dict | None:
        if self.terminal is None:
            return None
        response = self.terminal.get("response")
        if not isinstance(response, dict):
            return None
        response = dict(response)
        if not response.get("output"):
            response["output"] = [self._items[i] for i in sorted(self._items)]
        return response
