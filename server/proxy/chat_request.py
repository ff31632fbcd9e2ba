"""Translates a Chat Completions request into the Responses request the ChatGPT backend accepts.

Parameters the backend cannot honour are either dropped (sampling knobs it rejects, token caps it
ignores: validated first) or refused with a 400 naming the parameter; unknown extra keys are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from server.errors import BadRequest
from server.proxy import normalize

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
# Sampling knobs the backend rejects ("Unsupported parameter"): accepted from clients, not sent.
_DROPPED_NUMBERS = ("temperature", "top_p")
_TOKEN_CAPS = ("max_tokens", "max_completion_tokens")
_DEFAULT_ZERO = ("presence_penalty", "frequency_penalty")
_PASSED = ("parallel_tool_calls", "prompt_cache_key", "service_tier")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: bytes  # the Responses request sent upstream
    model: str
    stream: bool
    include_usage: bool
    include_reasoning: bool  # send reasoning summaries to the client as `reasoning_content`
    reasoning_effort: str
    session_key: str | None


def translate(raw: bytes, headers, key_scope: str = "") -> ChatRequest:
    payload = normalize.parse_json_object(raw)
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    model = model.strip()
    _refuse_unsupported(payload)
    stream = _flag(payload, "stream")
    stream_options = payload.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise BadRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(stream_options and stream_options.get("include_usage") is True)
    instructions, items = _messages(payload.get("messages"))
    body: dict = {"model": model, "instructions": instructions, "input": items}
    tools = _tools(payload)
    if tools:
        body["tools"] = tools
    tool_choice = _tool_choice(payload)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    for name in _PASSED:
        if payload.get(name) is not None:
            body[name] = payload[name]
    if body.get("service_tier") == "fast":
        body["service_tier"] = "priority"
    text_format = _text_format(payload.get("response_format"))
    if text_format is not None:
        body["text"] = {"format": text_format}
    if isinstance(payload.get("verbosity"), str):
        body.setdefault("text", {})["verbosity"] = payload["verbosity"]
    reasoning, include_reasoning = _reasoning(payload)
    if reasoning:
        body["reasoning"] = reasoning
    if not body.get("prompt_cache_key"):
        user = payload.get("user") if isinstance(payload.get("user"), str) else ""
        scope = f"{key_scope}|user:{user}" if user else key_scope
        body["prompt_cache_key"] = normalize.derived_cache_key(scope, model, instructions, items)
    body["store"] = False
    body["stream"] = True
    return ChatRequest(
        body=orjson.dumps(body),
        model=model,
        stream=stream,
        include_usage=include_usage,
        include_reasoning=include_reasoning,
        reasoning_effort=str(reasoning.get("effort", "")) if reasoning else "",
        session_key=normalize.session_key_of(headers, body),
    )


def _flag(payload: dict, name: str) -> bool:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be a boolean.", param=name)
    return value is True


def _unsupported(name: str, why: str) -> BadRequest:
    return BadRequest(f"Unsupported parameter: '{name}' {why}", param=name, code="unsupported_parameter")


def _refuse_unsupported(payload: dict) -> None:
    n = payload.get("n")
    if n is not None and n != 1:
        raise _unsupported("n", "must be 1: the ChatGPT backend generates one choice per request.")
    if payload.get("logprobs") or payload.get("top_logprobs"):
        name = "logprobs" if payload.get("logprobs") else "top_logprobs"
        raise _unsupported(name, "is not available through the ChatGPT backend.")
    modalities = payload.get("modalities")
    if payload.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise _unsupported("audio", "output is not available through the ChatGPT backend; use text.")
    stop = payload.get("stop")
    if stop not in (None, [], ""):
        raise _unsupported("stop", "sequences are not available through the ChatGPT backend.")
    if payload.get("logit_bias"):
        raise _unsupported("logit_bias", "is not available through the ChatGPT backend.")
    if payload.get("prediction") is not None:
        raise _unsupported("prediction", "(predicted outputs) is not available through the ChatGPT backend.")
    for name in _DEFAULT_ZERO:
        value = payload.get(name)
        if value not in (None, 0, 0.0):
            raise _unsupported(name, "is not available through the ChatGPT backend (only 0 is accepted).")
    for name in _DROPPED_NUMBERS:
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadRequest(f"'{name}' must be a number.", param=name)
    for name in _TOKEN_CAPS:
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BadRequest(f"'{name}' must be a positive integer.", param=name)


def _messages(messages) -> tuple[str, list]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    instructions: list[str] = []
    items: list = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.", param=param)
        content = message.get("content")
        if role in ("system", "developer"):
            instructions.append(_plain_text(content, param))
        elif role == "user":
            items.append({"type": "message", "role": "user", "content": _user_parts(content, param)})
        elif role == "assistant":
            items.extend(_assistant_items(message, param))
        else:  # tool
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"'{param}.tool_call_id' is required for tool messages.", param=param)
            output = _plain_text(content, param)
            items.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return "\n\n".join(instructions), items


def _plain_text(content, param: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise BadRequest(f"'{param}.content' may contain only text parts here.", param=param)
            texts.append(part["text"])
        return "\n".join(texts)
    raise BadRequest(f"'{param}.content' must be a string or an array of parts.", param=param)


def _user_parts(content, param: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"'{param}.content' must be a string or an array of parts.", param=param)
    parts = []
    for index, part in enumerate(content):
        where = f"{param}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise BadRequest(f"'{where}.image_url.url' is required.", param=where)
            converted = {"type": "input_image", "image_url": url}
            if isinstance(image, dict) and isinstance(image.get("detail"), str):
                converted["detail"] = image["detail"]
            parts.append(converted)
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            data, fmt = audio.get("data"), audio.get("format")
            if not isinstance(data, str) or not isinstance(fmt, str):
                raise BadRequest(f"'{where}.input_audio' needs 'data' and 'format'.", param=where)
            parts.append({"type": "input_file", "file_url": f"data:audio/{fmt};base64,{data}"})
        elif kind == "file":
            file = part.get("file") or {}
            if file.get("file_id"):
                raise _unsupported(f"{where}.file.file_id", "cannot be used: send the file as file_data.")
            if not isinstance(file.get("file_data"), str):
                raise BadRequest(f"'{where}.file.file_data' is required.", param=where)
            converted = {"type": "input_file", "file_data": file["file_data"]}
            if isinstance(file.get("filename"), str):
                converted["filename"] = file["filename"]
            parts.append(converted)
        else:
            raise BadRequest(f"'{where}' has an unsupported content part type {kind!r}.", param=where)
    return parts


def _assistant_items(message: dict, param: str) -> list[dict]:
    items = []
    content = message.get("content")
    parts: list[dict] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "refusal":
                parts.append({"type": "refusal", "refusal": str(part.get("refusal", ""))})
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append({"type": "output_text", "text": str(part.get("text", ""))})
            else:
                raise BadRequest(f"'{param}.content' may contain only text and refusal parts.", param=param)
    elif isinstance(content, str) and content:
        parts.append({"type": "output_text", "text": content})
    elif content is not None and not isinstance(content, str):
        raise BadRequest(f"'{param}.content' must be a string or an array of parts.", param=param)
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append({"type": "message", "role": "assistant", "content": parts})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest(f"'{param}.tool_calls' must be an array.", param=param)
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise BadRequest(f"'{param}.tool_calls[{index}]' needs 'id' and 'function'.", param=param)
        arguments = function.get("arguments", "")
        items.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": str(function.get("name", "")),
                "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
            }
        )
    return items


def _tools(payload: dict) -> list[dict]:
    tools = payload.get("tools")
    if tools is None:
        functions = payload.get("functions")  # the legacy spelling
        tools = (
            [{"type": "function", "function": f} for f in functions] if isinstance(functions, list) else []
        )
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", param="tools")
    out = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise BadRequest(
                f"'tools[{index}]' must be a function tool ({{'type': 'function', 'function': {{…}}}}).",
                param=f"tools[{index}]",
            )
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise BadRequest(f"'tools[{index}].function.name' is required.", param=f"tools[{index}]")
        converted = {"type": "function", "name": function["name"]}
        for key in ("description", "parameters", "strict"):
            if function.get(key) is not None:
                converted[key] = function[key]
        converted.setdefault("parameters", {"type": "object", "properties": {}})
        out.append(converted)
    return out


def _tool_choice(payload: dict):
    choice = payload.get("tool_choice", payload.get("function_call"))
    if choice is None or choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict):
        function = choice.get("function") if "function" in choice else choice
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "function", "name": function["name"]}
    raise BadRequest(
        "'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': …}}.",
        param="tool_choice",
    )


def _text_format(response_format):
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequest("'response_format.json_schema' needs a 'name'.", param="response_format")
        out = {"type": "json_schema", "name": spec["name"], "schema": spec.get("schema") or {}}
        for key in ("strict", "description"):
            if spec.get(key) is not None:
                out[key] = spec[key]
        return out
    raise BadRequest(
        "'response_format.type' must be 'text', 'json_object' or 'json_schema'.", param="response_format"
    )


def _reasoning(payload: dict) -> tuple[dict, bool]:
    """The Responses `reasoning` object, and whether the client asked to see the summaries."""
    reasoning = payload.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise BadRequest("'reasoning' must be an object.", param="reasoning")
    out = {k: v for k, v in (reasoning or {}).items() if k in ("effort", "summary")}
    effort = payload.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise BadRequest("'reasoning_effort' must be a string.", param="reasoning_effort")
        out["effort"] = effort
    include = payload.get("include_reasoning") is True or bool(out.get("summary"))
    if include:
        out.setdefault("summary", "auto")
    return out, include
