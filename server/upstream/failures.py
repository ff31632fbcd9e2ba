"""Upstream rejections sorted by what the proxy does next: HTTP errors, in-stream failures, broken links.
Owns UpstreamFailure, FailureKind and the parsing of retry hints ("try again in 1h2m3s")."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson


class FailureKind(Enum):
    USAGE_LIMIT = "usage_limit"  # a plan window is spent: quota_exceeded until retry_at
    RATE_LIMIT = "rate_limit"  # burst limit: cool down for the hinted delay
    NO_QUOTA = "no_quota"  # no credits, or the plan lacks Codex
    AUTH = "auth"  # access token bad: refresh once, retry on the same account
    DEACTIVATED = "deactivated"  # the account is gone for good
    PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"  # replay the full input
    MODEL_NOT_SUPPORTED = "model_not_supported"  # model/plan mismatch: another plan may serve it
    WEBSOCKET_EXPIRED = "websocket_expired"  # upstream socket hit its 60-minute life: reconnect
    TRANSIENT = "transient"  # overload, 5xx, broken connection: try another account
    CLIENT_ERROR = "client_error"  # the request itself: pass to the client


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    kind: FailureKind
    retry_at: float | None  # epoch seconds when the account may be tried again, when the upstream said
    code: str
    message: str
    status: int

    @property
    def allows_failover(self) -> bool:
        """Another account may serve the request (MODEL_NOT_SUPPORTED: one on a different plan)."""
        return self.kind is not FailureKind.CLIENT_ERROR


_USAGE_LIMIT_CODES = frozenset({"usage_limit_reached"})
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error"})
_NO_QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded", "usage_not_included"})
_DEACTIVATED_CODES = frozenset({"account_deactivated", "account_suspended", "account_deleted"})
_AUTH_CODES = frozenset(
    {
        "token_expired",
        "token_invalidated",
        "invalid_api_key",
        "missing_authorization",
        "authentication_error",
        "app_session_terminated",
        "account_session_expired",
        "account_auth_invalidated",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "server_is_overloaded",
        "overloaded_error",
        "server_error",
        "upstream_error",
        "upstream_unavailable",
        "stream_incomplete",
        "upstream_request_timeout",
    }
)
_CLIENT_CODES = frozenset({"context_length_exceeded", "invalid_prompt", "unsupported_parameter"})
_PREVIOUS_NOT_FOUND = "previous_response_not_found"
_WEBSOCKET_LIMIT = "websocket_connection_limit_reached"
_MODEL_NOT_SUPPORTED = "model_not_supported"
_DEACTIVATED_TEXT = "account has been deactivated"
_AT_CAPACITY_TEXT = "at capacity"
_MODEL_NOT_SUPPORTED_RE = re.compile(r"model is not supported when using codex", re.IGNORECASE)
# "try again in 11.054s", "in 250ms", "in 6m0s", "in 1h2m3s", "in 20 seconds", "in 1.5 minutes".
_HINT_RE = re.compile(r"(?:try again|retry)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*[a-z]+\s*)+)", re.IGNORECASE)
_PART_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)(?![a-z])",
    re.IGNORECASE,
)
_MAX_HINT_SECONDS = 366 * 86400
# Status the upstream would have sent, for in-stream failures that carry only a code or type.
_INFERRED_STATUS = {
    "permission_error": 403,
    "not_found": 404,
    "not_found_error": 404,
    "invalid_request_error": 400,
    _PREVIOUS_NOT_FOUND: 400,
    _WEBSOCKET_LIMIT: 400,
    _MODEL_NOT_SUPPORTED: 400,
    "context_length_exceeded": 400,
    "usage_not_included": 403,
    "server_is_overloaded": 503,
    "overloaded_error": 503,
}


def classify_http(
    status: int, body: bytes | dict | None, now: float, *, retry_after: str | None = None
) -> UpstreamFailure:
    """An HTTP answer with status >= 400 (body as bytes, decoded JSON or None; `retry-after` if sent)."""
    error = _error_object(_decode(body))
    return _classify(status, error, now, _retry_after_seconds(retry_after))


def classify_usage_poll(status: int, body: bytes | dict | None, now: float) -> UpstreamFailure:
    """A failed GET /wham/usage: 402 and 404 there mean the account is gone."""
    if status in (402, 404):
        error = _error_object(_decode(body))
        code, message = _code(error) or "account_deactivated", _message(error)
        return UpstreamFailure(FailureKind.DEACTIVATED, None, code, message, status)
    return classify_http(status, body, now)


def classify_event(event: dict, now: float) -> UpstreamFailure:
    """An in-stream `response.failed`, a bare `error` event or a WS frame {"type":"error","status":N}."""
    if not isinstance(event, dict):
        return _classify(500, {}, now, None)
    if event.get("type") == "response.failed":
        response = event.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        error = error if isinstance(error, dict) else {}
    elif isinstance(event.get("error"), dict):
        error = event["error"]
    else:  # a bare error event: the fields sit beside "type": "error"
        error = {key: value for key, value in event.items() if key != "type"}
    status = event.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        status = _infer_status(error)
    return _classify(status, error, now, None)


def classify_connection_error(exc: BaseException) -> UpstreamFailure:
    """The link to the upstream broke (refused, reset, TLS, timeout) before an answer arrived."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):  # asyncio's and aiohttp's timeouts are TimeoutError
        return UpstreamFailure(
            FailureKind.TRANSIENT, None, "upstream_request_timeout", f"Upstream timed out: {detail}", 504
        )
    return UpstreamFailure(
        FailureKind.TRANSIENT, None, "upstream_unavailable", f"Upstream unavailable: {detail}", 502
    )


def retry_hint_seconds(message: str) -> float | None:
    """Seconds from "... try again in 11.054s" (units ms/s/m/h, compound like 6m0s); None if no hint."""
    match = _HINT_RE.search(message)
    if match is None:
        return None
    total = 0.0
    seen = False
    for number, unit in _PART_RE.findall(match.group(1)):
        total += float(number) * _unit_seconds(unit.lower())
        seen = True
    return total if seen and total <= _MAX_HINT_SECONDS else None


def _classify(status: int, error: dict, now: float, retry_after: float | None) -> UpstreamFailure:
    code = _code(error)
    message = _message(error)
    codes = _codes(error)

    def failure(kind: FailureKind, retry_at: float | None = None, default_code: str = "") -> UpstreamFailure:
        return UpstreamFailure(kind, retry_at, code or default_code, message, status)

    if codes & _USAGE_LIMIT_CODES:
        return failure(FailureKind.USAGE_LIMIT, _reset_time(error, now) or _after(retry_after, now))
    if codes & _RATE_LIMIT_CODES:
        return failure(FailureKind.RATE_LIMIT, _hinted_time(message, now) or _after(retry_after, now))
    if codes & _NO_QUOTA_CODES:
        return failure(FailureKind.NO_QUOTA, _reset_time(error, now))
    if codes & _DEACTIVATED_CODES or _DEACTIVATED_TEXT in message.lower():
        return failure(FailureKind.DEACTIVATED, None, "account_deactivated")
    if codes & _AUTH_CODES or status == 401:
        return failure(FailureKind.AUTH, None, "unauthorized")
    if _PREVIOUS_NOT_FOUND in codes:
        return failure(FailureKind.PREVIOUS_RESPONSE_NOT_FOUND)
    if _WEBSOCKET_LIMIT in codes:
        return failure(FailureKind.WEBSOCKET_EXPIRED)
    if _MODEL_NOT_SUPPORTED in codes or _MODEL_NOT_SUPPORTED_RE.search(message):
        return failure(FailureKind.MODEL_NOT_SUPPORTED, None, _MODEL_NOT_SUPPORTED)
    if codes & _TRANSIENT_CODES or _AT_CAPACITY_TEXT in message.lower():
        return failure(FailureKind.TRANSIENT, None, "server_error")
    if codes & _CLIENT_CODES:
        return failure(FailureKind.CLIENT_ERROR, None, "invalid_request_error")
    if status == 429:
        retry_at = _hinted_time(message, now) or _after(retry_after, now)
        return failure(FailureKind.RATE_LIMIT, retry_at, "rate_limited")
    if status == 402:
        return failure(FailureKind.NO_QUOTA, None, "payment_required")
    # 403 without a known code (e.g. an HTML challenge from the edge) is about this account, not the request.
    if status >= 500 or status in (403, 408, 409):
        return failure(FailureKind.TRANSIENT, None, "upstream_error")
    return failure(FailureKind.CLIENT_ERROR, None, "invalid_request_error")


def _decode(body: bytes | dict | None) -> Any:
    if isinstance(body, bytes | bytearray | memoryview | str):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            text = bytes(body).decode("utf-8", "replace") if not isinstance(body, str) else body
            return {"message": text.strip()[:500]}
    return body


def _error_object(decoded: Any) -> dict:
    if not isinstance(decoded, dict):
        return {}
    inner = decoded.get("error")
    if isinstance(inner, dict):
        return inner
    if isinstance(inner, str):
        return {"message": inner, "code": decoded.get("code"), "type": decoded.get("type")}
    detail = decoded.get("detail")
    if isinstance(detail, str) and "message" not in decoded:
        return {"message": detail}
    return decoded


def _codes(error: dict) -> frozenset[str]:
    found = set()
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value:
            found.add(value.lower())
    return frozenset(found)


def _code(error: dict) -> str:
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def _message(error: dict) -> str:
    message = error.get("message")
    return message if isinstance(message, str) else ""


def _infer_status(error: dict) -> int:
    codes = _codes(error)
    if codes & _AUTH_CODES:
        return 401
    if codes & _DEACTIVATED_CODES:
        return 403
    if codes & (_USAGE_LIMIT_CODES | _RATE_LIMIT_CODES | {"insufficient_quota", "quota_exceeded"}):
        return 429
    for code in (_code(error), *sorted(codes)):
        if code in _INFERRED_STATUS:
            return _INFERRED_STATUS[code]
    if _MODEL_NOT_SUPPORTED_RE.search(_message(error)):
        return 400
    return 500


def _reset_time(error: dict, now: float) -> float | None:
    """`resets_at` when it is a sane future epoch, else now + `resets_in_seconds`."""
    resets_at = _number(error.get("resets_at"))
    if resets_at is not None and now < resets_at <= now + _MAX_HINT_SECONDS:
        return resets_at
    return _after(_number(error.get("resets_in_seconds")), now)


def _hinted_time(message: str, now: float) -> float | None:
    return _after(retry_hint_seconds(message), now)


def _after(seconds: float | None, now: float) -> float | None:
    if seconds is None or seconds < 0 or seconds > _MAX_HINT_SECONDS:
        return None
    return now + seconds


def _retry_after_seconds(value: str | None) -> float | None:
    return _number(value) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _unit_seconds(unit: str) -> float:
    if unit.startswith(("ms", "msec", "milli")):
        return 0.001
    if unit.startswith("s"):
        return 1.0
    if unit.startswith("m"):
        return 60.0
    return 3600.0
