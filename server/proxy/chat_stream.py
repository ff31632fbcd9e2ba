"""Translates a Responses event stream into Chat Completions: `chat.completion.chunk` SSE, event by
event as it arrives, or one `chat.completion` object. Owns ChatTranslator; chunks are built with orjson.
"""

from __future__ import annotations

import time

import orjson

from server.upstream.sse import SSEEvent

DONE = b"data: [DONE]\n\n"
_FINISH_BY_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chat_usage(usage: dict | None) -> dict | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(cached)},
        "completion_tokens_details": {"reasoning_tokens": int(reasoning)},
    }


class _ToolCall:
    __slots__ = ("index", "call_id", "name", "arguments")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.call_id = call_id
        self.name = name
        self.arguments = ""


class ChatTranslator:
    """Feed Responses events in order; `streaming` builds chunk bytes, otherwise only the totals are kept
    for `completion()`. Exactly one of `finished` / `error` is set once a terminal event was fed."""

    def __init__(
        self, model: str, *, streaming: bool, include_usage: bool = False, include_reasoning: bool = False
    ) -> None:
        self.model = model
        self.streaming = streaming
        self.include_usage = include_usage
        self.include_reasoning = include_reasoning
        self.id = "chatcmpl-codexlb"
        self.created = int(time.time())
        self.role_sent = False
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[str, _ToolCall] = {}  # by output item id (or output index)
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.error: dict | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None or self.error is not None

    # -- stream -----------------------------------------------------------------------------------
    def feed(self, event: SSEEvent) -> list[bytes]:
        name = event.name
        handler = _HANDLERS.get(name)
        if handler is None or self.finished:
            return []
        return handler(self, event.data())

    def truncated(self) -> list[bytes]:
        """The upstream ended without a terminal event, after content: end the stream as an error."""
        return self._fail(
            {
                "message": "The upstream stream ended before the response completed.",
                "type": "server_error",
                "code": "stream_incomplete",
            }
        )

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        if not self.role_sent:
            delta = {"role": "assistant", **delta}
            self.role_sent = True
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return sse(chunk)

    def _created(self, data: dict) -> list[bytes]:
        response = data.get("response") or {}
        if response.get("id"):
            self.id = "chatcmpl-" + str(response["id"]).removeprefix("resp_")
        return []

    def _text(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        self.text.append(delta)
        return [self._chunk({"content": delta})] if self.streaming else []

    def _refusal(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        self.refusal.append(delta)
        return [self._chunk({"refusal": delta})] if self.streaming else []

    def _reasoning_part(self, data: dict) -> list[bytes]:
        if not self.include_reasoning or not self.reasoning:
            return []
        return self._reasoning_text("\n\n")  # between summary parts, as the Codex CLI shows them

    def _reasoning_delta(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not self.include_reasoning or not isinstance(delta, str) or not delta:
            return []
        return self._reasoning_text(delta)

    def _reasoning_text(self, text: str) -> list[bytes]:
        self.reasoning.append(text)
        return [self._chunk({"reasoning_content": text})] if self.streaming else []

    def _item_added(self, data: dict) -> list[bytes]:
        item = data.get("item") or {}
        if item.get("type") != "function_call":
            return []
        call = _ToolCall(
            len(self.calls), str(item.get("call_id") or item.get("id") or ""), item.get("name", "")
        )
        self.calls[_item_key(item.get("id"), data)] = call
        arguments = item.get("arguments") or ""
        call.arguments = arguments
        if not self.streaming:
            return []
        function = {"name": call.name, "arguments": arguments}
        return [
            self._chunk(
                {
                    "tool_calls": [
                        {"index": call.index, "id": call.call_id, "type": "function", "function": function}
                    ]
                }
            )
        ]

    def _arguments_delta(self, data: dict) -> list[bytes]:
        call = self.calls.get(_item_key(data.get("item_id"), data))
        delta = data.get("delta")
        if call is None or not isinstance(delta, str) or not delta:
            return []
        call.arguments += delta
        if not self.streaming:
            return []
        return [self._chunk({"tool_calls": [{"index": call.index, "function": {"arguments": delta}}]})]

    def _item_done(self, data: dict) -> list[bytes]:
        item = data.get("item") or {}
        if item.get("type") != "function_call":
            return []
        key = _item_key(item.get("id"), data)
        call = self.calls.get(key)
        if call is None:  # no output_item.added seen: announce it now
            out = self._item_added(
                {"item": {**item, "arguments": ""}, "output_index": data.get("output_index")}
            )
            call = self.calls[key]
        else:
            out = []
        final = item.get("arguments")
        if isinstance(final, str) and final.startswith(call.arguments) and len(final) > len(call.arguments):
            # Arguments that arrived only in the done event (no deltas): send the rest.
            rest = final[len(call.arguments) :]
            call.arguments = final
            if self.streaming:
                out.append(
                    self._chunk({"tool_calls": [{"index": call.index, "function": {"arguments": rest}}]})
                )
        return out

    def _terminal(self, data: dict) -> list[bytes]:
        response = data.get("response") or {}
        self.usage = chat_usage(response.get("usage"))
        if data.get("type") == "response.incomplete" or response.get("status") == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            finish = _FINISH_BY_INCOMPLETE.get(reason) if isinstance(reason, str) else None
            self.finish_reason = finish or "length"
        else:
            self.finish_reason = "tool_calls" if self.calls else "stop"
        if not self.streaming:
            return []
        out = [self._chunk({}, self.finish_reason)]
        if self.include_usage:
            out.append(
                sse(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": self.usage,
                    }
                )
            )
        out.append(DONE)
        return out

    def _failed(self, data: dict) -> list[bytes]:
        if data.get("type") == "error":
            error = data.get("error")
            if not isinstance(error, dict):
                error = data
        else:
            error = (data.get("response") or {}).get("error") or {}
            self.usage = chat_usage((data.get("response") or {}).get("usage"))
        return self._fail(
            {
                "message": str(error.get("message") or "The response failed upstream."),
                "type": str(error.get("type") or "server_error"),
                "code": str(error.get("code") or "response_failed"),
            }
        )

    def _fail(self, error: dict) -> list[bytes]:
        self.error = error
        return [sse({"error": error}), DONE] if self.streaming else []

    # -- one object -------------------------------------------------------------------------------
    def completion(self) -> dict:
        message: dict = {
            "role": "assistant",
            "content": "".join(self.text) if self.text or not (self.calls or self.refusal) else None,
            "refusal": "".join(self.refusal) or None,
        }
        if self.calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in sorted(self.calls.values(), key=lambda c: c.index)
            ]
        if self.include_reasoning and self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": self.usage,
        }


def _item_key(item_id, data: dict) -> str:
    return str(item_id) if item_id else f"#{data.get('output_index')}"


_HANDLERS = {
    "response.created": ChatTranslator._created,
    "response.output_text.delta": ChatTranslator._text,
    "response.refusal.delta": ChatTranslator._refusal,
    "response.reasoning_summary_part.added": ChatTranslator._reasoning_part,
    "response.reasoning_summary_text.delta": ChatTranslator._reasoning_delta,
    "response.output_item.added": ChatTranslator._item_added,
    "response.function_call_arguments.delta": ChatTranslator._arguments_delta,
    "response.output_item.done": ChatTranslator._item_done,
    "response.completed": ChatTranslator._terminal,
    "response.incomplete": ChatTranslator._terminal,
    "response.failed": ChatTranslator._failed,
    "error": ChatTranslator._failed,
}
