"""Every upstream rejection row of the protocol's error table, sorted into what the proxy does next."""

from __future__ import annotations

import pytest

from server.upstream.failures import (
    FailureKind,
    classify_connection_error,
    classify_event,
    classify_http,
    classify_usage_poll,
    retry_hint_seconds,
)

NOW = 1_750_000_000.0
MODEL_MESSAGE = "The 'gpt-5.5-pro' model is not supported when using Codex with a ChatGPT account."


def _error(code: str | None = None, message: str = "", type_: str = "invalid_request_error", **extra) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code, **extra}}


def test_usage_limit_reached_benches_until_the_upstream_reset():
    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": NOW + 3600,
            "resets_in_seconds": 3599,
        }
    }
    failure = classify_http(429, body, NOW)
    assert failure.kind is FailureKind.USAGE_LIMIT
    assert failure.retry_at == NOW + 3600
    assert failure.code == "usage_limit_reached"
    assert failure.status == 429
    assert failure.allows_failover


@pytest.mark.parametrize("resets_at", [None, "soon", NOW - 10, NOW + 400 * 86400])
def test_usage_limit_without_a_sane_resets_at_uses_resets_in_seconds(resets_at):
    body = {"error": {"type": "usage_limit_reached", "resets_at": resets_at, "resets_in_seconds": 120}}
    assert classify_http(429, body, NOW).retry_at == NOW + 120


def test_usage_limit_with_no_reset_at_all_leaves_the_time_to_the_balancer():
    failure = classify_http(429, b'{"error":{"type":"usage_limit_reached"}}', NOW)
    assert (failure.kind, failure.retry_at) == (FailureKind.USAGE_LIMIT, None)


def test_rate_limit_exceeded_uses_the_hinted_delay():
    message = (
        "Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM): Limit 30000, "
        "Used 30000, Requested 1000. Please try again in 11.054s."
    )
    failure = classify_http(429, _error("rate_limit_exceeded", message, "tokens"), NOW)
    assert failure.kind is FailureKind.RATE_LIMIT
    assert failure.retry_at == pytest.approx(NOW + 11.054)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Please try again in 11.054s.", 11.054),
        ("Please try again in 250ms.", 0.25),
        ("Please try again in 6m0s.", 360.0),
        ("Please try again in 1h2m3s.", 3723.0),
        ("Please try again in 2h.", 7200.0),
        ("Please try again in 20 seconds.", 20.0),
        ("please TRY AGAIN IN 1.5 minutes", 90.0),
        ("Retry after 3 s", 3.0),
        ("Please try again later.", None),
        ("Please try again in a moment.", None),
        ("", None),
    ],
)
def test_retry_hint_formats(message, seconds):
    hinted = retry_hint_seconds(message)
    assert hinted == (None if seconds is None else pytest.approx(seconds))


def test_rate_limit_without_hint_leaves_the_back_off_to_the_balancer():
    failure = classify_http(429, _error("rate_limit_exceeded", "Slow down."), NOW)
    assert (failure.kind, failure.retry_at) == (FailureKind.RATE_LIMIT, None)


def test_a_bare_429_is_a_rate_limit_and_honours_retry_after():
    failure = classify_http(429, b"Too Many Requests", NOW, retry_after="7")
    assert (failure.kind, failure.retry_at) == (FailureKind.RATE_LIMIT, NOW + 7)


@pytest.mark.parametrize("code", ["insufficient_quota", "quota_exceeded", "usage_not_included"])
def test_no_quota_codes(code):
    failure = classify_http(429 if code != "usage_not_included" else 403, _error(code, "No quota."), NOW)
    assert failure.kind is FailureKind.NO_QUOTA
    assert failure.code == code


@pytest.mark.parametrize("code", ["token_expired", "token_invalidated", "invalid_api_key"])
def test_bad_access_tokens_ask_for_a_refresh(code):
    failure = classify_http(401, _error(code, "Provided authentication token is expired."), NOW)
    assert failure.kind is FailureKind.AUTH
    assert failure.retry_at is None


def test_a_401_without_a_body_asks_for_a_refresh():
    assert classify_http(401, None, NOW).kind is FailureKind.AUTH


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("code", ["account_deactivated", "account_suspended", "account_deleted"])
def test_dead_accounts(status, code):
    failure = classify_http(status, _error(code, "Your OpenAI account has been deactivated."), NOW)
    assert failure.kind is FailureKind.DEACTIVATED
    assert failure.code == code


def test_deactivation_known_only_from_the_message():
    body = {"detail": "This account has been deactivated."}
    assert classify_http(403, body, NOW).kind is FailureKind.DEACTIVATED


@pytest.mark.parametrize("status", [402, 404])
def test_usage_poll_402_and_404_mean_the_account_is_gone(status):
    failure = classify_usage_poll(status, b"", NOW)
    assert failure.kind is FailureKind.DEACTIVATED


def test_usage_poll_403_is_not_a_deactivation():
    assert classify_usage_poll(403, _error("forbidden", "Forbidden"), NOW).kind is not FailureKind.DEACTIVATED
    assert classify_usage_poll(401, None, NOW).kind is FailureKind.AUTH


def test_previous_response_not_found_keeps_its_code():
    body = _error(
        "previous_response_not_found",
        "Previous response with id 'resp_x' not found.",
        param="previous_response_id",
    )
    failure = classify_http(400, body, NOW)
    assert failure.kind is FailureKind.PREVIOUS_RESPONSE_NOT_FOUND
    assert failure.code == "previous_response_not_found"
    assert failure.allows_failover


def test_model_not_supported_may_try_another_plan():
    failure = classify_http(400, _error(None, MODEL_MESSAGE), NOW)
    assert failure.kind is FailureKind.MODEL_NOT_SUPPORTED
    assert failure.message == MODEL_MESSAGE
    assert failure.allows_failover


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, _error("server_error", "An error occurred.", "server_error")),
        (502, b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"),
        (503, _error("server_is_overloaded", "The server is overloaded or not ready yet.", "server_error")),
        (529, _error("overloaded_error", "Overloaded")),
        (504, None),
        (200, _error(None, "Selected model is at capacity. Please try a different model.", "server_error")),
        (403, b"<html>Just a moment...</html>"),  # an edge challenge is about the account, not the request
    ],
)
def test_transient_failures(status, body):
    failure = classify_http(status, body, NOW)
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.retry_at is None
    assert failure.allows_failover


@pytest.mark.parametrize(
    "body",
    [
        _error(None, "Unsupported parameter: temperature", param="temperature"),
        _error("context_length_exceeded", "Your input exceeds the context window of this model."),
        _error("unsupported_parameter", "Unsupported parameter: max_output_tokens"),
        b'{"detail": "Bad Request"}',
        b"",
    ],
)
def test_other_400s_belong_to_the_client(body):
    failure = classify_http(400, body, NOW)
    assert failure.kind is FailureKind.CLIENT_ERROR
    assert not failure.allows_failover


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b"\xff\xfe", {"error": "plain string"}, {"error": None}, 12, "text"]
)
def test_garbage_bodies_never_raise(body):
    failure = classify_http(500, body, NOW)  # type: ignore[arg-type]
    assert failure.kind is FailureKind.TRANSIENT
    assert isinstance(failure.message, str)


def test_in_stream_response_failed_rate_limit():
    event = {
        "type": "response.failed",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {"code": "rate_limit_exceeded", "message": "Please try again in 250ms."},
        },
    }
    failure = classify_event(event, NOW)
    assert failure.kind is FailureKind.RATE_LIMIT
    assert failure.status == 429
    assert failure.retry_at == pytest.approx(NOW + 0.25)


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        ("server_is_overloaded", FailureKind.TRANSIENT, 503),
        ("overloaded_error", FailureKind.TRANSIENT, 503),
        ("insufficient_quota", FailureKind.NO_QUOTA, 429),
        ("usage_not_included", FailureKind.NO_QUOTA, 403),
        ("context_length_exceeded", FailureKind.CLIENT_ERROR, 400),
        ("token_expired", FailureKind.AUTH, 401),
        ("account_deactivated", FailureKind.DEACTIVATED, 403),
        ("stream_incomplete", FailureKind.TRANSIENT, 500),
        ("something_new", FailureKind.TRANSIENT, 500),
    ],
)
def test_in_stream_failure_codes(code, kind, status):
    event = {"type": "response.failed", "response": {"error": {"code": code, "message": "x"}}}
    failure = classify_event(event, NOW)
    assert (failure.kind, failure.status, failure.code) == (kind, status, code)


def test_websocket_error_frame_with_usage_limit():
    frame = {
        "type": "error",
        "status": 429,
        "error": {"type": "usage_limit_reached", "resets_in_seconds": 60, "plan_type": "plus"},
        "headers": {"x-codex-primary-used-percent": "100.0"},
    }
    failure = classify_event(frame, NOW)
    assert (failure.kind, failure.status, failure.retry_at) == (FailureKind.USAGE_LIMIT, 429, NOW + 60)


def test_bare_error_event():
    event = {"type": "error", "code": "server_is_overloaded", "message": "Overloaded", "param": None}
    failure = classify_event(event, NOW)
    assert (failure.kind, failure.code, failure.status) == (
        FailureKind.TRANSIENT,
        "server_is_overloaded",
        503,
    )


def test_bare_error_event_with_only_a_capacity_message():
    failure = classify_event({"type": "error", "message": "Selected model is at capacity."}, NOW)
    assert failure.kind is FailureKind.TRANSIENT


def test_websocket_connection_limit_asks_for_a_new_socket():
    frame = {
        "type": "error",
        "status": 400,
        "error": {
            "type": "invalid_request_error",
            "code": "websocket_connection_limit_reached",
            "message": "Responses websocket connection limit reached (60 minutes).",
        },
    }
    failure = classify_event(frame, NOW)
    assert failure.kind is FailureKind.WEBSOCKET_EXPIRED
    assert failure.allows_failover


def test_model_not_supported_in_a_stream():
    event = {"type": "error", "error": {"type": "invalid_request_error", "message": MODEL_MESSAGE}}
    failure = classify_event(event, NOW)
    assert (failure.kind, failure.status) == (FailureKind.MODEL_NOT_SUPPORTED, 400)


@pytest.mark.parametrize("event", [None, {}, {"type": "response.failed"}, {"type": "error", "status": "x"}])
def test_garbage_events_never_raise(event):
    failure = classify_event(event, NOW)  # type: ignore[arg-type]
    assert failure.kind is FailureKind.TRANSIENT


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (ConnectionResetError("Connection reset by peer"), "upstream_unavailable", 502),
        (ConnectionRefusedError(), "upstream_unavailable", 502),
        (OSError("TLS handshake failed"), "upstream_unavailable", 502),
        (TimeoutError(), "upstream_request_timeout", 504),
    ],
)
def test_connection_errors_are_transient(exc, code, status):
    failure = classify_connection_error(exc)
    assert (failure.kind, failure.code, failure.status) == (FailureKind.TRANSIENT, code, status)
    assert failure.allows_failover
