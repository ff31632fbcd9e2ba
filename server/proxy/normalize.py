"""Turns a client's Responses body into what the ChatGPT backend accepts, per route.

The Codex route passes the CLI's body through (only `store`/`stream` forced and rejected fields
stripped, original bytes kept when nothing changes); /v1 callers also get string input expanded,
system/developer messages hoisted into `instructions`, aliases mapped and `include` filtered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from server.errors import BadRequest

UNSUPPORTED = (
    "max_output_tokens",
    "temperature",
    "top_p",
    "metadata",
    "user",
    "truncation",
    "safety_identifier",
    "prompt_cache_retention",
    "prompt_cache_options",
    "background",
)
INCLUDE_ALLOWED = frozenset(
    {
        "reasoning.encrypted_content",
        "code_interpreter_call.outputs",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "message.input_image.image_url",
        "message.output_text.logprobs",
        "web_search_call.action.sources",
    }
)


@dataclass(frozen=True, slots=True)
class NormalizedRequest:
    body: bytes  # what goes upstream
    model: str
    client_stream: bool
    reasoning_effort: str
    session_key: str | None
    has_previous_response: bool
    # The client itself marked a conversation (session header, turn state, its own cache key or a
    # previous response), as opposed to the key codex-lb derives for clients that send none.
    client_session: bool = False


def parse_json_object(raw: bytes) -> dict:
    if not raw:
        raise BadRequest("Request body is empty; expected a JSON object.", code="invalid_json")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object.", code="invalid_json")
    return payload


def _require_model(payload: dict) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    return model.strip()


def _check_input(payload: dict) -> None:
    value = payload.get("input")
    if value is not None and not isinstance(value, (str, list)):
        raise BadRequest("'input' must be a string or an array of input items.", param="input")
    if payload.get("instructions") is not None and not isinstance(payload["instructions"], str):
        raise BadRequest("'instructions' must be a string.", param="instructions")
    for name in ("tools", "include"):
        if name in payload and payload[name] is not None and not isinstance(payload[name], list):
            raise BadRequest(f"'{name}' must be an array.", param=name)
    reasoning = payload.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise BadRequest("'reasoning' must be an object.", param="reasoning")


def session_key_of(headers, payload: dict) -> str | None:
    for name in ("session-id", "session_id"):
        value = headers.get(name)
        if value:
            return value
    for name in ("prompt_cache_key", "conversation", "previous_response_id"):
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value["id"]
    return None


def _effort(payload: dict) -> str:
    reasoning = payload.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else ""


def normalize_codex(raw: bytes, headers) -> NormalizedRequest:
    """The Codex CLI's own route: keep its body, force only what the backend insists on."""
    payload = parse_json_object(raw)
    model = _require_model(payload)
    _check_input(payload)
    changed = payload.get("store") is not False or payload.get("stream") is not True
    for name in UNSUPPORTED:
        if name in payload:
            del payload[name]
            changed = True
    payload["store"] = False
    payload["stream"] = True
    if isinstance(payload.get("input"), str):
        payload["input"] = [_user_text(payload["input"])]
        changed = True
    return NormalizedRequest(
        body=orjson.dumps(payload) if changed else raw,
        model=model,
        client_stream=True,
        reasoning_effort=_effort(payload),
        session_key=session_key_of(headers, payload),
        has_previous_response=bool(payload.get("previous_response_id")),
        client_session=_client_session(headers, payload),
    )


def _client_session(headers, payload: dict) -> bool:
    return "x-codex-turn-state" in headers or session_key_of(headers, payload) is not None


def normalize_openai(raw: bytes, headers, key_scope: str = "") -> NormalizedRequest:
    """SDK / OpenCode / OpenClaw callers of /v1/responses."""
    payload = parse_json_object(raw)
    model = _require_model(payload)
    _check_input(payload)
    client_stream = payload.get("stream") is True
    _map_aliases(payload)
    for name in UNSUPPORTED:
        payload.pop(name, None)
    items = payload.get("input")
    if items is None:
        items = []
    elif isinstance(items, str):
        items = [_user_text(items)]
    instructions, items = _hoist_instructions(payload.get("instructions"), items)
    payload["input"] = items
    payload["instructions"] = instructions
    if "include" in payload:
        payload["include"] = _include(payload["include"])
    client_session = _client_session(headers, payload)
    if not payload.get("prompt_cache_key"):
        payload["prompt_cache_key"] = _derived_cache_key(key_scope, model, instructions, items)
    payload["store"] = False
    payload["stream"] = True
    return NormalizedRequest(
        body=orjson.dumps(payload),
        model=model,
        client_stream=client_stream,
        reasoning_effort=_effort(payload),
        session_key=session_key_of(headers, payload),
        has_previous_response=bool(payload.get("previous_response_id")),
        client_session=client_session,
    )


def _include(value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("'include' must be an array of strings.", param="include", code="invalid_type")
    return [i for i in value if isinstance(i, str) and i in INCLUDE_ALLOWED]


def _user_text(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _map_aliases(payload: dict) -> None:
    effort = payload.pop("reasoning_effort", None) or payload.pop("reasoningEffort", None)
    if isinstance(effort, str):
        reasoning = payload.setdefault("reasoning", {})
        if isinstance(reasoning, dict):
            reasoning.setdefault("effort", effort)
    if "promptCacheKey" in payload:
        payload.setdefault("prompt_cache_key", payload.pop("promptCacheKey"))
    verbosity = payload.pop("verbosity", None)
    if isinstance(verbosity, str):
        text = payload.setdefault("text", {})
        if isinstance(text, dict):
            text.setdefault("verbosity", verbosity)
    if payload.get("service_tier") == "fast":
        payload["service_tier"] = "priority"


def _hoist_instructions(instructions, items: list) -> tuple[str, list]:
    """Move system/developer message text into `instructions`, as the backend wants it."""
    parts = [instructions] if isinstance(instructions, str) and instructions else []
    kept = []
    for item in items:
        if (
            isinstance(item, dict)
            and item.get("role") in ("system", "developer")
            and item.get("type", "message") == "message"
        ):
            text = _message_text(item.get("content"))
            if text is not None:
                parts.append(text)
                continue
        kept.append(item)
    return "\n".join(parts), kept


def _message_text(content) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("input_text", "text", "output_text"):
                return None  # non-text content stays in the input
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    return None


def _derived_cache_key(scope: str, model: str, instructions: str, items: list) -> str:
    """A stable per-conversation key (scope, model and the conversation's opening) for clients that send
    none, so the upstream prompt cache and our stickiness still work."""
    opening = next((item for item in items if isinstance(item, dict) and item.get("role") == "user"), None)
    digest = hashlib.blake2b(digest_size=16)
    for part in (scope, model, instructions[:4096]):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(orjson.dumps(opening, option=orjson.OPT_SORT_KEYS) if opening else b"")
    return "clb_" + digest.hexdigest()


derived_cache_key = _derived_cache_key  # also used by the Chat Completions translation


def cache_scope(key_id: int | None, client_address: str) -> str:
    """Whose conversations a derived cache key separates: the API key's, else the client address's, so
    identical prompts from different clients do not all land on one account."""
    return f"key:{key_id}" if key_id is not None else f"addr:{client_address}"
