"""Request-body rules of the Codex backend: what it rejects with 400 before doing any work.
Owns the parsing of JSON bodies and WebSocket frames into plain dicts."""

from __future__ import annotations

import orjson

from .errors import invalid_request, unsupported_parameter

UNSUPPORTED_PARAMETERS = (
    "max_output_tokens",
    "temperature",
    "top_p",
    "metadata",
    "user",
    "truncation",
    "safety_identifier",
    "prompt_cache_retention",
)
_UNSUPPORTED = frozenset(UNSUPPORTED_PARAMETERS)


def parse_json_object(raw: bytes | str) -> dict:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(
            f"We could not parse the JSON body of your request. ({exc})", code="invalid_json"
        ) from exc
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.", code="invalid_json")
    return body


def _check_common(body: dict) -> None:
    extra = _UNSUPPORTED.intersection(body)
    if extra:
        raise unsupported_parameter(next(p for p in UNSUPPORTED_PARAMETERS if p in extra))
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_request(
            "Invalid type for 'instructions': expected a string.", "instructions", "invalid_type"
        )
    items = body.get("input")
    if items is not None and not isinstance(items, list | str):
        raise invalid_request(
            "Invalid type for 'input': expected a string or an array of items.", "input", "invalid_type"
        )


def check_responses_body(body: dict, over_websocket: bool = False) -> None:
    """Raise the backend's 400 for a body it would refuse; WebSocket frames carry no `stream`."""
    if body.get("store") is not False and ("store" in body or not over_websocket):
        raise invalid_request("Store must be set to false", "store", "invalid_value")
    if not over_websocket and body.get("stream") is not True:
        raise invalid_request("Stream must be set to true", "stream", "invalid_value")
    _check_common(body)


def check_compact_body(body: dict) -> None:
    _check_common(body)
    if not isinstance(body.get("input"), list):
        raise invalid_request(
            "Invalid type for 'input': expected an array of items.", "input", "invalid_type"
        )
