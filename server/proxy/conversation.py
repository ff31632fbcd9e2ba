"""What a client WebSocket's conversation has said so far, so any upstream can continue it.

Turns on a socket name their predecessor with `previous_response_id` and send only new items; that id
means something only to the upstream socket that produced it. Keeping each response's full input plus
its output items lets the proxy replay the whole conversation to another account, another socket, or
an HTTP upstream, instead of surfacing `previous_response_not_found`.
"""

from __future__ import annotations

from collections import OrderedDict

from server.upstream.sse import SSEEvent

KEPT_RESPONSES = 4  # clients chain from the latest response; a few older ones cover retries


class Conversation:
    __slots__ = ("_history",)

    def __init__(self) -> None:
        self._history: OrderedDict[str, list] = OrderedDict()

    def full_input(self, frame: dict) -> list | None:
        """The turn's whole input (history + new items); None when the anchor is unknown here."""
        items = frame.get("input")
        items = items if isinstance(items, list) else ([] if items is None else None)
        if items is None:
            return None  # a string input: normalisation expands it, nothing to prepend
        previous = frame.get("previous_response_id")
        if not previous:
            return items
        history = self._history.get(previous) if isinstance(previous, str) else None  # e.g. a list
        return None if history is None else history + items

    def full_frame(self, frame: dict) -> dict | None:
        """The frame with its anchor replaced by the full input, or None if it has no known anchor."""
        if not frame.get("previous_response_id"):
            return None
        items = self.full_input(frame)
        if items is None:
            return None
        full = {k: v for k, v in frame.items() if k != "previous_response_id"}
        full["input"] = items
        return full

    def record(self, response_id: str, full_input: list | None, events: list[SSEEvent]) -> None:
        """Remember a finished response: its input and the output items its events carried."""
        if not response_id or full_input is None:
            return
        output = []
        for event in events:
            if event.name == "response.output_item.done":
                item = event.data().get("item")
                if isinstance(item, dict):
                    output.append(item)
        self._history[response_id] = full_input + output
        while len(self._history) > KEPT_RESPONSES:
            self._history.popitem(last=False)
