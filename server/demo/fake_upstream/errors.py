"""Error answers of the fake backend, worded and shaped like the real ones (HTTP bodies and stream errors).
Owns `Rejection`, raised by any handler and rendered by the app's middleware."""

from __future__ import annotations

from .quota import Quota, WindowUse

PREVIOUS_NOT_FOUND = "previous_response_not_found"


class Rejection(Exception):
    """An HTTP error answer: status plus a JSON body (dict) or a text body (str)."""

    def __init__(self, status: int, body: dict | str, content_type: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type or ("application/json" if isinstance(body, dict) else "text/html")
        self.account: object = None  # set when the caller's account is known (for quota headers)
        self.behaviour: object = None

    @property
    def error(self) -> dict:
        """The inner error object (for WebSocket error frames)."""
        if isinstance(self.body, dict):
            inner = self.body.get("error")
            return inner if isinstance(inner, dict) else self.body
        return {"type": "server_error", "code": "server_error", "message": self.body}


def _openai(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> Rejection:
    return Rejection(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> Rejection:
    return _openai(400, message, "invalid_request_error", code, param)


def unsupported_parameter(name: str) -> Rejection:
    return invalid_request(f"Unsupported parameter: {name}", name, "unsupported_parameter")


def previous_response_not_found(response_id: str) -> Rejection:
    return invalid_request(
        f"Previous response with id '{response_id}' not found.", "previous_response_id", PREVIOUS_NOT_FOUND
    )


def model_not_supported(model: str) -> Rejection:
    return invalid_request(
        f"The '{model}' model is not supported when using Codex with a ChatGPT account.",
        "model",
        "model_not_supported",
    )


_AUTH_MESSAGES = {
    "token_expired": "Provided authentication token is expired. Please try signing in again.",
    "token_invalidated": "Your authentication token has been invalidated. Please try signing in again.",
    "missing_authorization": "Missing bearer authentication in header.",
}


def unauthorized(code: str) -> Rejection:
    message = _AUTH_MESSAGES.get(code, "Could not validate your authentication token.")
    return _openai(401, message, "invalid_request_error", code)


def account_mismatch() -> Rejection:
    return _openai(
        403,
        "The chatgpt-account-id header does not match the authorization token.",
        "invalid_request_error",
        "account_mismatch",
    )


def account_deactivated(status: int = 403) -> Rejection:
    return _openai(
        status,
        "Your OpenAI account has been deactivated, please check your email for more information.",
        "invalid_request_error",
        "account_deactivated",
    )


def usage_limit_error(quota: Quota, window: WindowUse | None = None) -> dict:
    window = window or quota.exhausted_window or quota.primary
    return {
        "type": "usage_limit_reached",
        "code": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": quota.plan_type,
        "resets_at": window.reset_at,
        "resets_in_seconds": window.reset_after_seconds,
    }


def usage_limit_reached(quota: Quota, window: WindowUse | None = None) -> Rejection:
    """The plan's windows are spent, or (`window`) the per-model bucket of the requested model."""
    error = usage_limit_error(quota, window)
    del error["code"]  # the HTTP 429 carries only `type`, as observed
    return Rejection(429, {"error": error})


def rate_limit_message(model: str, retry_after_s: float) -> str:
    return (
        f"Rate limit reached for {model} in organization org-fake on tokens per min (TPM): "
        f"Limit 30000, Used 30000, Requested 1000. Please try again in {retry_after_s:g}s."
    )


def rate_limit_exceeded(model: str, retry_after_s: float) -> Rejection:
    return _openai(429, rate_limit_message(model, retry_after_s), "tokens", "rate_limit_exceeded")


def injected_failure(status: int, body: dict | str | None) -> Rejection:
    if body is not None:
        return Rejection(status, body)
    if status == 502:
        return Rejection(
            502, "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
        )
    if status == 503:
        return _openai(
            503, "The server is overloaded or not ready yet.", "server_error", "server_is_overloaded"
        )
    return _openai(status, "An error occurred while processing your request.", "server_error", "server_error")


_STREAM_MESSAGES = {
    "server_is_overloaded": "Our servers are currently overloaded. Please try again later.",
    "overloaded_error": "Selected model is at capacity. Please try a different model.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
    "quota_exceeded": "You exceeded your current quota, please check your plan and billing details.",
    "usage_not_included": "Your plan does not include Codex usage.",
    "context_length_exceeded": "Your input exceeds the context window of this model.",
}
_STREAM_STATUSES = {
    "rate_limit_exceeded": 429,
    "usage_limit_reached": 429,
    "insufficient_quota": 429,
    "quota_exceeded": 429,
    "usage_not_included": 403,
    "context_length_exceeded": 400,
    "server_is_overloaded": 503,
    "overloaded_error": 503,
}


def stream_error(code: str, quota: Quota, model: str, retry_after_s: float) -> dict:
    """The `error` object of response.failed (or of an error event) for an in-stream failure code."""
    if code == "usage_limit_reached":
        return usage_limit_error(quota)
    if code == "rate_limit_exceeded":
        return {"type": "tokens", "code": code, "message": rate_limit_message(model, retry_after_s)}
    message = _STREAM_MESSAGES.get(code, "An error occurred while processing your request.")
    return {
        "type": "server_error" if code.startswith(("server", "overload")) else "invalid_request_error",
        "code": code,
        "message": message,
    }


def stream_error_status(code: str) -> int:
    return _STREAM_STATUSES.get(code, 500)
