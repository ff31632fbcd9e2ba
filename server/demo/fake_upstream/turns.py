"""One model turn of the fake: the ordered Responses events for a request, with deterministic usage.
Owns what the fake "says" (text, reasoning, tool calls, compaction) independent of SSE or WebSocket."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

import orjson

from .behaviour import Behaviour
from .errors import stream_error
from .quota import Quota
from .tools import ToolCall, last_user_text, plan_tool_calls, structured_reply, tool_output

DELTA_TYPES = frozenset(
    {
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_summary_text.delta",
    }
)
EFFORT_TOKENS = {"none": 0, "minimal": 2, "low": 4, "medium": 8, "high": 16, "xhigh": 32}
COMPACTION_OUTPUT_TOKENS = 16
_ARGUMENT_CHUNK = 12


@dataclass(frozen=True, slots=True)
class TurnUsage:
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Turn:
    response_id: str
    events: list[dict]
    delta_positions: tuple[int, ...]  # indexes of delta events in `events`
    usage: TurnUsage
    terminal: str  # completed, incomplete, failed or error

    @property
    def billable(self) -> bool:
        return self.terminal in ("completed", "incomplete")

    @property
    def context_tokens(self) -> int:
        """What a follow-up turn (previous_response_id, same prompt_cache_key) finds cached."""
        return self.usage.total_tokens


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything about the caller a turn depends on, besides the request body."""

    account_id: str
    behaviour: Behaviour
    quota: Quota
    cached_prefix: int = 0  # tokens the account's prompt cache holds for this prompt_cache_key
    previous_tokens: int = 0  # context of the previous_response_id this turn continues
    prewarm: bool = False  # WebSocket `generate: false`


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


@lru_cache(maxsize=2048)
def split_reply(text: str, deltas: int) -> tuple[str, ...]:
    """Pieces whose concatenation is the reply: one per word, or exactly `deltas` when set."""
    words = text.split(" ")
    pieces = [w + " " for w in words[:-1]] + [words[-1]]
    if deltas <= 0 or deltas == len(pieces):
        return tuple(pieces)
    if deltas < len(pieces):
        size, extra = divmod(len(pieces), deltas)
        out, i = [], 0
        for n in range(deltas):
            step = size + (1 if n < extra else 0)
            out.append("".join(pieces[i : i + step]))
            i += step
        return tuple(out)
    pieces[-1] += " "
    cycled = [pieces[n % len(pieces)] for n in range(deltas)]
    cycled[-1] = cycled[-1].rstrip(" ")
    return tuple(cycled)


def estimate_input_tokens(body: dict) -> int:
    items = body.get("input")
    size = len(items) if isinstance(items, str) else len(orjson.dumps(items or []))
    return max(1, (size + len(body.get("instructions") or "")) // 4)


def _encrypted(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "gAAAAB" + base64.urlsafe_b64encode(digest * 3).decode()


class _Events:
    __slots__ = ("events", "deltas")

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.deltas: list[int] = []

    def add(self, type_: str, **payload: object) -> None:
        if type_ in DELTA_TYPES:
            self.deltas.append(len(self.events))
        self.events.append({"type": type_, "sequence_number": len(self.events), **payload})


def _reply_text(body: dict, ctx: TurnContext) -> str:
    output = tool_output(body.get("input"))
    if output is not None:
        return f"Tool result: {output}"
    template = ctx.behaviour.reply_text or "Hello from fake account {account_id}."
    if "{" not in template:
        return template
    return template.replace("{account_id}", ctx.account_id).replace("{model}", str(body.get("model")))


def _reasoning(out: _Events, index: int, body: dict, ctx: TurnContext, response_id: str) -> int:
    reasoning = body.get("reasoning")
    effort = (reasoning.get("effort") or "medium") if isinstance(reasoning, dict) else "none"
    tokens = EFFORT_TOKENS.get(effort, EFFORT_TOKENS["medium"])
    if tokens == 0:
        return 0
    item_id = new_id("rs")
    out.add(
        "response.output_item.added",
        output_index=index,
        item={"id": item_id, "type": "reasoning", "summary": []},
    )
    summary = []
    if reasoning.get("summary") not in (None, "none"):
        text = ctx.behaviour.reasoning_summary_text
        part = {"item_id": item_id, "output_index": index, "summary_index": 0}
        out.add("response.reasoning_summary_part.added", **part, part={"type": "summary_text", "text": ""})
        for piece in split_reply(text, 0):
            out.add("response.reasoning_summary_text.delta", **part, delta=piece)
        out.add("response.reasoning_summary_text.done", **part, text=text)
        out.add("response.reasoning_summary_part.done", **part, part={"type": "summary_text", "text": text})
        summary = [{"type": "summary_text", "text": text}]
    item = {"id": item_id, "type": "reasoning", "summary": summary}
    include = body.get("include")
    if isinstance(include, list) and "reasoning.encrypted_content" in include:
        item["encrypted_content"] = _encrypted(response_id)
    out.add("response.output_item.done", output_index=index, item=item)
    return tokens


def _message(out: _Events, index: int, text: str, deltas: int) -> int:
    item_id = new_id("msg")
    pieces = split_reply(text, deltas)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    out.add(
        "response.output_item.added",
        output_index=index,
        item={"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []},
    )
    out.add(
        "response.content_part.added", **where, part={"type": "output_text", "text": "", "annotations": []}
    )
    for piece in pieces:
        out.add("response.output_text.delta", **where, delta=piece, logprobs=[])
    out.add("response.output_text.done", **where, text=text, logprobs=[])
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    out.add("response.content_part.done", **where, part=part)
    out.add(
        "response.output_item.done",
        output_index=index,
        item={
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [part],
        },
    )
    return len(pieces)


def _tool_call(out: _Events, index: int, call: ToolCall) -> int:
    chunks = [call.arguments[i : i + _ARGUMENT_CHUNK] for i in range(0, len(call.arguments), _ARGUMENT_CHUNK)]
    chunks = chunks or [""]
    if call.kind == "custom":
        item_id, field, prefix = new_id("ctc"), "input", "response.custom_tool_call_input"
        item = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": "in_progress",
            "call_id": new_id("call"),
            "name": call.name,
            "input": "",
        }
    else:
        item_id, field, prefix = new_id("fc"), "arguments", "response.function_call_arguments"
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": new_id("call"),
            "name": call.name,
        }
    out.add("response.output_item.added", output_index=index, item=item)
    for chunk in chunks:
        out.add(f"{prefix}.delta", item_id=item_id, output_index=index, delta=chunk)
    out.add(f"{prefix}.done", item_id=item_id, output_index=index, **{field: call.arguments})
    out.add(
        "response.output_item.done",
        output_index=index,
        item={**item, "status": "completed", field: call.arguments},
    )
    return len(chunks)


def _compaction(out: _Events, index: int, response_id: str) -> int:
    item = {"id": new_id("cmp"), "type": "compaction", "encrypted_content": _encrypted(response_id)}
    out.add("response.output_item.added", output_index=index, item=item)
    out.add("response.output_item.done", output_index=index, item=item)
    return COMPACTION_OUTPUT_TOKENS


def wants_compaction(items: object) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and isinstance(items[-1], dict)
        and items[-1].get("type") == "compaction_trigger"
    )


def plan_turn(body: dict, ctx: TurnContext) -> Turn:
    response_id = new_id("resp")
    input_tokens = estimate_input_tokens(body) + ctx.previous_tokens
    cached = min(input_tokens, max(ctx.cached_prefix, ctx.previous_tokens))
    response = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": body.get("model"),
        "output": [],
        "previous_response_id": body.get("previous_response_id"),
        "error": None,
        "incomplete_details": None,
        "usage": None,
    }
    out = _Events()
    out.add("response.created", response=response)
    failure = ctx.behaviour.stream_failure
    if failure and not ctx.prewarm:
        code, shape = failure
        error = stream_error(code, ctx.quota, str(body.get("model")), ctx.behaviour.retry_after_s)
        if shape == "error":
            out.add("error", code=error["code"], message=error["message"], param=None, error=error)
        else:
            out.add("response.failed", response={**response, "status": "failed", "error": error})
        return Turn(response_id, out.events, (), TurnUsage(input_tokens, cached, 0, 0), shape)
    if ctx.prewarm:
        usage = TurnUsage(input_tokens, cached, 0, 0)
        out.add("response.completed", response={**response, "status": "completed", "usage": usage.as_dict()})
        return Turn(response_id, out.events, (), usage, "completed")
    out.add("response.in_progress", response=response)
    index = 0
    reasoning_tokens = _reasoning(out, index, body, ctx, response_id)
    index += 1 if reasoning_tokens else 0
    items = body.get("input")
    if wants_compaction(items):
        produced = _compaction(out, index, response_id)
    else:
        calls = [] if tool_output(items) is not None else plan_tool_calls(body, last_user_text(items))
        if calls:
            produced = 0
            for offset, call in enumerate(calls):
                produced += _tool_call(out, index + offset, call)
        else:
            reply = _reply_text(body, ctx)
            produced = _message(out, index, structured_reply(body, reply) or reply, ctx.behaviour.deltas)
    usage = TurnUsage(input_tokens, cached, produced + reasoning_tokens, reasoning_tokens)
    if ctx.behaviour.completed_output:  # the public API's shape; the backend usually sends []
        response = {
            **response,
            "output": [e["item"] for e in out.events if e["type"] == "response.output_item.done"],
        }
    if ctx.behaviour.incomplete:
        out.add(
            "response.incomplete",
            response={
                **response,
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": usage.as_dict(),
            },
        )
        terminal = "incomplete"
    else:
        out.add("response.completed", response={**response, "status": "completed", "usage": usage.as_dict()})
        terminal = "completed"
    return Turn(response_id, out.events, tuple(out.deltas), usage, terminal)
