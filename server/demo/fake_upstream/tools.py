"""The fake model's tool use: when to call a tool, which one, and with what arguments.
Owns the `CALL_TOOL` / `[[tool:NAME {args}]]` prompt conventions and schema-driven argument building."""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

CALL_TOOL = "CALL_TOOL"
TOOL_MARKER = re.compile(r"\[\[tool:([\w.\-]+)(?:\s+(.*?))?\]\]", re.S)
TOOL_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
_COMMAND_NAMES = frozenset({"command", "cmd"})
_COMMAND_TEXT = "echo fake-tool-call"
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ToolCall:
    kind: str  # "function" or "custom"
    name: str
    arguments: str  # JSON text for a function, free-form input for a custom tool


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def last_user_text(items: list | str | None) -> str:
    if isinstance(items, str):
        return items
    for item in reversed(items or ()):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return _text_of(item.get("content"))
    return ""


def tool_output(items: list | str | None) -> str | None:
    """The output text when the conversation's last item answers a tool call, else None."""
    if not isinstance(items, list) or not items:
        return None
    last = items[-1]
    if not isinstance(last, dict) or last.get("type") not in TOOL_OUTPUT_TYPES:
        return None
    output = last.get("output")
    return output if isinstance(output, str) else _text_of(output) or orjson.dumps(output).decode()


def _tool_index(tools: object) -> dict[str, dict]:
    index: dict[str, dict] = {}
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = spec.get("name")
        if isinstance(name, str) and tool.get("type") in ("function", "custom"):
            index.setdefault(name, {"type": tool["type"], "parameters": spec.get("parameters")})
    return index


def _value_for(name: str, schema: object, depth: int) -> object:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "test"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            option = next((o for o in options if isinstance(o, dict) and o.get("type") != "null"), options[0])
            return _value_for(name, option, depth + 1)
        kind = "object" if "properties" in schema else "string"
    if kind == "string":
        return _COMMAND_TEXT if name in _COMMAND_NAMES else "test"
    if kind in ("integer", "number"):
        if "timeout" in name:
            return 10_000
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "array":
        items = schema.get("items") or {}
        if name in _COMMAND_NAMES and isinstance(items, dict) and items.get("type", "string") == "string":
            return _COMMAND_TEXT.split()
        return [_value_for(name, items, depth + 1) for _ in range(int(schema.get("minItems", 0)))]
    return schema_arguments(schema, depth + 1)


def schema_arguments(schema: object, depth: int = 0) -> dict:
    """Arguments valid against a JSON schema: every required property, with plain values."""
    if not isinstance(schema, dict):
        return {}
    properties = schema.get("properties") or {}
    return {name: _value_for(name, properties.get(name), depth) for name in schema.get("required") or ()}


def _arguments(tool: dict | None, raw: str | None) -> str:
    kind = tool["type"] if tool else "function"
    if kind == "custom":
        return raw if raw else "test"
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return orjson.dumps(parsed).decode()
    return orjson.dumps(schema_arguments(tool["parameters"] if tool else None)).decode()


def plan_tool_call(body: dict, user_text: str) -> ToolCall | None:
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    forced = choice.get("name") if isinstance(choice, dict) else None
    marker = TOOL_MARKER.search(user_text) if "[[tool:" in user_text else None
    if not (marker or forced or CALL_TOOL in user_text or choice == "required"):
        return None
    tools = _tool_index(body.get("tools"))
    raw = None
    if marker:
        name, raw = marker.group(1), (marker.group(2) or "").strip() or None
    elif forced:
        name = forced
    else:
        name = next((n for n, t in tools.items() if t["type"] == "function"), None) or next(iter(tools), None)
        if name is None:
            return None
    tool = tools.get(name)
    return ToolCall(tool["type"] if tool else "function", name, _arguments(tool, raw))


def plan_tool_calls(body: dict, user_text: str) -> list[ToolCall]:
    """Every `[[tool:NAME {args}]]` marker becomes a call (parallel calls) unless the request turned
    `parallel_tool_calls` off; otherwise as plan_tool_call."""
    markers = TOOL_MARKER.findall(user_text) if "[[tool:" in user_text else []
    if (
        len(markers) > 1
        and body.get("parallel_tool_calls") is not False
        and body.get("tool_choice") != "none"
    ):
        tools = _tool_index(body.get("tools"))
        return [
            ToolCall(
                tools[name]["type"] if name in tools else "function",
                name,
                _arguments(tools.get(name), (raw or "").strip() or None),
            )
            for name, raw in markers
        ]
    call = plan_tool_call(body, user_text)
    return [call] if call is not None else []


def structured_reply(body: dict, text: str) -> str | None:
    """The reply for a request that asked for JSON (`text.format`): valid against a given schema."""
    text_options = body.get("text")
    fmt = text_options.get("format") if isinstance(text_options, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        return orjson.dumps(schema_arguments(fmt.get("schema"))).decode()
    if kind == "json_object":
        return orjson.dumps({"reply": text}).decode()
    return None
