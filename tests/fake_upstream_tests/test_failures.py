"""The fake backend's quota headers and failure switches: 429s, 5xx, auth errors, broken streams, pacing."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream import mint_auth_json
from server.demo.fake_upstream.client import bearer, parse_sse, post_responses, responses_body
from tests.support.polling import eventually

QUOTA_HEADERS = [
    "x-codex-primary-used-percent",
    "x-codex-primary-window-minutes",
    "x-codex-primary-reset-at",
    "x-codex-secondary-used-percent",
    "x-codex-secondary-window-minutes",
    "x-codex-secondary-reset-at",
    "x-codex-credits-has-credits",
    "x-codex-credits-unlimited",
    "x-codex-credits-balance",
    "x-codex-turn-state",
]


async def _stream(session, fake_upstream, auth, **extra):
    return await post_responses(session, fake_upstream.base_url, responses_body(**extra), bearer(auth))


async def test_quota_headers_on_every_answer_reflect_tokens_spent(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", primary_budget_tokens=200, secondary_budget_tokens=2000)
    ok = await _stream(session, fake_upstream, auth)
    spent = ok.usage["total_tokens"]
    assert all(name in ok.headers for name in QUOTA_HEADERS)
    # Headers are computed when the head goes out, after the turn was booked.
    assert float(ok.headers["x-codex-primary-used-percent"]) == pytest.approx(spent * 100 / 200, abs=0.01)
    assert float(ok.headers["x-codex-secondary-used-percent"]) == pytest.approx(spent * 100 / 2000, abs=0.01)
    assert ok.headers["x-codex-primary-window-minutes"] == "300"
    assert ok.headers["x-codex-secondary-window-minutes"] == "10080"
    reset_at = int(ok.headers["x-codex-primary-reset-at"])
    assert time.time() < reset_at <= time.time() + 300 * 60 + 1
    bad = await _stream(session, fake_upstream, auth, temperature=1)
    assert bad.status == 400 and all(name in bad.headers for name in QUOTA_HEADERS)


async def test_turn_state_is_echoed_when_the_client_sends_one(fake_upstream, session, auth):
    headers = {**bearer(auth), "x-codex-turn-state": "ts_client"}
    result = await post_responses(session, fake_upstream.base_url, responses_body(), headers)
    assert result.headers["x-codex-turn-state"] == "ts_client"


async def test_windows_and_credits_follow_configuration(fake_upstream, session, auth):
    await fake_upstream.configure_account(
        "acc_test",
        primary_window_minutes=43200,
        secondary_window_minutes=0,
        credits_has_credits=True,
        credits_balance="12.50",
    )
    result = await _stream(session, fake_upstream, auth)
    assert result.headers["x-codex-primary-window-minutes"] == "43200"
    assert "x-codex-secondary-used-percent" not in result.headers
    assert result.headers["x-codex-credits-has-credits"] == "true"
    assert result.headers["x-codex-credits-balance"] == "12.50"


async def test_spent_budget_answers_usage_limit_reached_until_the_window_resets(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", primary_budget_tokens=10)
    first = await _stream(session, fake_upstream, auth)
    assert first.status == 200  # the turn that crosses the budget still completes
    blocked = await _stream(session, fake_upstream, auth)
    assert blocked.status == 429
    error = blocked.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert error["resets_at"] == int(blocked.headers["x-codex-primary-reset-at"])
    assert 0 < error["resets_in_seconds"] <= 300 * 60
    assert blocked.headers["x-codex-primary-used-percent"] == "100.0"
    stats = await fake_upstream.account_stats("acc_test")
    assert stats["statuses"] == {"200": 1, "429": 1}


async def test_consume_hook_spends_budget_directly(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", secondary_budget_tokens=1000)
    await fake_upstream.consume("acc_test", 1000)
    blocked = await _stream(session, fake_upstream, auth)
    assert blocked.status == 429
    assert blocked.json()["error"]["resets_at"] == int(blocked.headers["x-codex-secondary-reset-at"])


async def test_rate_limited_switch_answers_429_with_a_retry_hint(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", rate_limited=True, retry_after_s=1.5)
    result = await _stream(session, fake_upstream, auth)
    assert result.status == 429
    error = result.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"].endswith("Please try again in 1.5s.")
    assert "x-codex-primary-used-percent" in result.headers


async def test_failure_rate_is_deterministic_and_bounded_by_failure_limit(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", failure_rate=0.5, failure_status=503)
    statuses = [(await _stream(session, fake_upstream, auth)).status for _ in range(6)]
    assert statuses == [200, 503, 200, 503, 200, 503]
    await fake_upstream.reset()
    auth = await fake_upstream.create_account(
        "acc_test", failure_rate=1.0, failure_limit=2, failure_status=500
    )
    statuses = [(await _stream(session, fake_upstream, auth)).status for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert (await fake_upstream.account_stats("acc_test"))["injected_failures"] == 2


async def test_failure_bodies_look_like_the_real_ones(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", failure_rate=1.0, failure_status=502)
    gateway = await _stream(session, fake_upstream, auth)
    assert gateway.status == 502 and b"Bad Gateway" in gateway.body
    assert gateway.headers["content-type"].startswith("text/html")
    await fake_upstream.configure_account("acc_test", failure_status=500)
    server = await _stream(session, fake_upstream, auth)
    assert server.status == 500 and server.json()["error"]["type"] == "server_error"
    await fake_upstream.configure_account("acc_test", failure_status=503, failure_body={"detail": "custom"})
    custom = await _stream(session, fake_upstream, auth)
    assert custom.status == 503 and custom.json() == {"detail": "custom"}


async def test_deactivated_account_is_403_and_402_on_usage(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", deactivated=True)
    result = await _stream(session, fake_upstream, auth)
    assert result.status == 403 and result.json()["error"]["code"] == "account_deactivated"
    async with session.get(fake_upstream.base_url + "/wham/usage", headers=bearer(auth)) as answer:
        assert answer.status == 402
        assert (await answer.json())["error"]["code"] == "account_deactivated"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_authorization"),
        ({"Authorization": "Bearer not-a-jwt"}, "token_invalidated"),
    ],
)
async def test_missing_or_foreign_tokens_are_401(fake_upstream, session, headers, code):
    result = await post_responses(session, fake_upstream.base_url, responses_body(), headers)
    assert result.status == 401 and result.json()["error"]["code"] == code


async def test_expired_access_token_is_401_token_expired(fake_upstream, session):
    stale = mint_auth_json("acc_stale", access_ttl_s=-60)
    result = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(stale))
    assert result.status == 401 and result.json()["error"]["code"] == "token_expired"


async def test_expire_tokens_hook_spares_tokens_issued_afterwards(fake_upstream, session, auth):
    await fake_upstream.expire_tokens("acc_test", "token_invalidated")
    rejected = await _stream(session, fake_upstream, auth)
    assert rejected.status == 401 and rejected.json()["error"]["code"] == "token_invalidated"
    async with session.post(
        fake_upstream.auth_url + "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "refresh_token": auth["tokens"]["refresh_token"],
            "scope": "openid profile email",
        },
    ) as answer:
        fresh = await answer.json()
    renewed = {"tokens": {"access_token": fresh["access_token"], "account_id": "acc_test"}}
    assert (await _stream(session, fake_upstream, renewed)).status == 200


async def test_auth_error_switch_and_account_header_mismatch(fake_upstream, session, auth):
    mismatch = {**bearer(auth), "chatgpt-account-id": "acc_someone_else"}
    result = await post_responses(session, fake_upstream.base_url, responses_body(), mismatch)
    assert result.status == 403 and result.json()["error"]["code"] == "account_mismatch"
    await fake_upstream.configure_account("acc_test", auth_error="token_expired")
    forced = await _stream(session, fake_upstream, auth)
    assert forced.status == 401 and forced.json()["error"]["code"] == "token_expired"


@pytest.mark.parametrize("switch", [{"overload_in_stream": True}, {"overload_in_stream": "failed"}])
async def test_overload_in_stream_fails_after_created(fake_upstream, session, auth, switch):
    await fake_upstream.configure_account("acc_test", **switch)
    result = await _stream(session, fake_upstream, auth)
    assert result.status == 200
    assert result.types == ["response.created", "response.failed"]
    failed = result.terminal["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_is_overloaded"
    assert failed["id"] == result.events[0]["response"]["id"]


async def test_overload_as_error_event(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", overload_in_stream="error")
    result = await _stream(session, fake_upstream, auth)
    assert result.types == ["response.created", "error"]
    assert result.terminal["code"] == "server_is_overloaded" and result.terminal["sequence_number"] == 1


@pytest.mark.parametrize(
    ("code", "check"),
    [
        ("rate_limit_exceeded", lambda e: "Please try again in 1.5s" in e["message"]),
        ("usage_limit_reached", lambda e: e["resets_at"] > time.time() and e["plan_type"] == "plus"),
        ("insufficient_quota", lambda e: "quota" in e["message"]),
        ("usage_not_included", lambda e: "Codex" in e["message"]),
    ],
)
async def test_in_stream_failure_code_chooses_the_error(fake_upstream, session, auth, code, check):
    await fake_upstream.configure_account("acc_test", in_stream_failure_code=code)
    result = await _stream(session, fake_upstream, auth)
    error = result.terminal["response"]["error"]
    assert result.terminal["type"] == "response.failed" and error["code"] == code and check(error)
    assert (await fake_upstream.account_stats("acc_test"))["tokens_out"] == 0  # failed turns are not billed


async def test_incomplete_switch_ends_with_max_output_tokens(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", incomplete=True)
    result = await _stream(session, fake_upstream, auth)
    assert result.terminal["type"] == "response.incomplete"
    response = result.terminal["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["output_tokens"] == 5


async def _read_until_cut(session, fake_upstream, auth) -> tuple[bytes, bool]:
    data, broken = b"", False
    async with session.post(
        fake_upstream.base_url + "/codex/responses", json=responses_body(), headers=bearer(auth)
    ) as answer:
        try:
            async for chunk in answer.content.iter_any():
                data += chunk
        except aiohttp.ClientPayloadError:
            broken = True
    return data, broken


async def test_cut_stream_drops_the_connection_before_the_terminal_event(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", cut_stream=True, cut_after_deltas=2)
    data, broken = await _read_until_cut(session, fake_upstream, auth)
    events = parse_sse(data.rsplit(b"\n\n", 1)[0] + b"\n\n")
    types = [e["type"] for e in events]
    assert broken
    assert types.count("response.output_text.delta") == 2
    assert types[-1] == "response.output_text.delta" and "response.completed" not in types


async def test_pacing_delays_the_head_and_spaces_the_deltas(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", ttfb_ms=60, delta_interval_ms=25, stall_ms=40)
    started = time.monotonic()
    async with session.post(
        fake_upstream.base_url + "/codex/responses", json=responses_body(), headers=bearer(auth)
    ) as answer:
        head = time.monotonic() - started
        body = await answer.read()
    total = time.monotonic() - started
    assert head >= 0.06
    assert total >= 0.06 + 0.04 + 4 * 0.025
    assert parse_sse(body)[-1]["type"] == "response.completed"


async def test_concurrent_streams_are_counted(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", delta_interval_ms=40)
    results = await asyncio.gather(*[_stream(session, fake_upstream, auth) for _ in range(4)])
    assert all(r.status == 200 for r in results)
    stats = await fake_upstream.account_stats("acc_test")
    assert stats["max_concurrent_streams"] == 4
    await eventually(  # the server books a stream's end just after its last byte
        lambda: fake_upstream.account_stats("acc_test"),
        lambda stats: stats["current_streams"] == 0,
        interval=0.01,
    )


async def test_errors_carry_json_bodies_parsable_by_clients(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", rate_limited=True)
    result = await _stream(session, fake_upstream, auth)
    assert orjson.loads(result.body)["error"]["type"] == "tokens"
