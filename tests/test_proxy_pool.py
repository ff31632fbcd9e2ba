"""Pooling behaviour against the fake: distribution, stickiness, failover, cooldowns, refresh, settlement."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.support.polling import eventually
from tests.support.proxy import codex_body

CODEX = "/backend-api/codex/responses"


async def requests_per_account(proxy) -> dict[str, int]:
    return {k: v["requests"] for k, v in (await proxy.fake.stats())["accounts"].items() if v["requests"]}


async def test_requests_spread_over_accounts_by_headroom(proxy):
    await proxy.add_accounts("acc_a", "acc_b", "acc_c", primary_budget_tokens=2000)
    for _ in range(12):
        answer = await proxy.post(CODEX, codex_body("hello"))
        assert answer.status == 200
    counts = await requests_per_account(proxy)
    assert set(counts) == {"acc_a", "acc_b", "acc_c"}
    assert max(counts.values()) - min(counts.values()) <= 2, counts


async def test_a_session_sticks_to_one_account(proxy):
    await proxy.add_accounts("acc_a", "acc_b", "acc_c")
    for _ in range(6):
        assert (await proxy.post(CODEX, codex_body("hi"), {"session-id": "conversation-1"})).status == 200
    assert sorted((await requests_per_account(proxy)).values()) == [6]
    for i in range(30):
        await proxy.post(CODEX, codex_body("hi"), {"session_id": f"other-{i}"})
    assert len(await requests_per_account(proxy)) == 3  # different sessions land on different accounts


async def test_a_prompt_cache_key_also_keeps_the_session_together(proxy):
    await proxy.add_accounts("acc_a", "acc_b", "acc_c")
    for _ in range(5):
        await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi", "prompt_cache_key": "thread-9"})
    assert sorted((await requests_per_account(proxy)).values()) == [5]


FAILURES = {
    "usage_limit": {"primary_budget_tokens": 1},
    "rate_limit": {"rate_limited": True, "retry_after_s": 30},
    "server_error": {"failure_rate": 1.0, "failure_status": 502},
    "deactivated": {"deactivated": True},
    "overload_in_stream": {"overload_in_stream": True},
    "error_event_in_stream": {"overload_in_stream": "error"},
    "usage_limit_in_stream": {"overload_in_stream": True, "in_stream_failure_code": "usage_limit_reached"},
    "cut_before_content": {"cut_stream": True, "cut_after_deltas": 0},
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
async def test_failover_is_invisible_before_the_first_content(proxy, kind):
    await proxy.add_accounts("acc_bad", **FAILURES[kind])
    await proxy.add_accounts("acc_good", reply_text="served by good")
    if kind == "usage_limit":
        await proxy.fake.consume("acc_bad", 10)
    for i in range(12):  # enough sessions that some hash to the bad account first
        answer = await proxy.post(CODEX, codex_body("hi"), {"session-id": f"s-{kind}-{i}"})
        assert answer.status == 200, answer.raw
        assert answer.text() == "served by good"
        assert [e["type"] for e in answer.events()].count("response.created") == 1
    stats = await proxy.fake.account_stats("acc_bad")  # it was tried: logged, or rejected with a status
    assert await proxy.fake.requests(account="acc_bad", path=CODEX) or sum(stats["statuses"].values())
    logs = await proxy.request_logs(12)
    assert any(row["attempts"] == 2 and row["status"] == 200 for row in logs)


async def test_a_failure_after_content_ends_the_stream_with_a_failure_event(proxy):
    await proxy.add_accounts("acc_cut", cut_stream=True, cut_after_deltas=2, deltas=6)
    answer = await proxy.post(CODEX, codex_body("hi"))
    assert answer.status == 200
    events = answer.events()
    assert [e["type"] for e in events].count("response.output_text.delta") == 2
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "stream_incomplete"
    [row] = await proxy.request_logs(1)
    assert (row["status"], row["error_code"]) == (502, "stream_incomplete")


async def test_all_accounts_exhausted_is_a_429_with_the_soonest_reset(proxy):
    await proxy.add_accounts("acc_a", "acc_b", primary_budget_tokens=1)
    await proxy.fake.consume("acc_a", 10)
    await proxy.fake.consume("acc_b", 10)
    answer = await proxy.post(CODEX, codex_body("hi"))
    assert answer.status == 429
    error = answer.json()["error"]
    assert error["code"] == "usage_limit_reached" and error["type"] == "usage_limit_reached"
    assert error["resets_at"] > time.time()
    assert 0 < int(answer.headers["Retry-After"]) <= 300 * 60
    again = await proxy.post(CODEX, codex_body("hi"))  # now answered from memory: no upstream call
    assert again.status == 429
    assert sum((await requests_per_account(proxy)).values()) == 2
    await eventually(  # account states are written through in the background
        lambda: account_states(proxy),
        lambda states: states == {"acc_a": "quota_exceeded", "acc_b": "quota_exceeded"},
    )


async def account_states(proxy) -> dict[str, str]:
    return {a["chatgpt_account_id"]: a["status"] for a in await proxy.accounts()}


async def test_a_cooled_down_account_recovers(proxy):
    await proxy.add_accounts("acc_only", rate_limited=True, retry_after_s=0.4)
    first = await proxy.post(CODEX, codex_body("hi"))
    assert first.status == 429
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" in {k.lower() for k in first.headers}
    await proxy.fake.configure_account("acc_only", rate_limited=False)
    await eventually(
        lambda: proxy.post(CODEX, codex_body("hi")),
        lambda answer: answer.status == 200,
        timeout=10,
        interval=0.1,
    )


async def test_twenty_concurrent_401s_cause_one_refresh(proxy):
    await proxy.add_accounts("acc_r", token_latency_ms=200)
    await proxy.fake.expire_tokens("acc_r")
    answers = await asyncio.gather(*(proxy.post(CODEX, codex_body(f"q{i}")) for i in range(20)))
    assert [a.status for a in answers] == [200] * 20
    stats = await proxy.fake.account_stats("acc_r")
    assert stats["refreshes"] == 1
    assert stats.get("refresh_reused", 0) == 0
    later = await proxy.post(CODEX, codex_body("after"))  # the stored token is the new one
    assert later.status == 200 and (await proxy.fake.account_stats("acc_r"))["refreshes"] == 1


async def test_a_dead_login_marks_the_account_for_reauthentication(proxy):
    await proxy.add_accounts("acc_gone", refresh_error="invalid_grant")
    await proxy.fake.expire_tokens("acc_gone")
    answer = await proxy.post(CODEX, codex_body("hi"))
    assert answer.status == 503
    assert "sign in again" in answer.json()["error"]["message"]
    [account] = await eventually(proxy.accounts, lambda accounts: accounts[0]["status"] == "reauth_required")
    assert "invalid_grant" in account["status_reason"]


async def test_usage_and_cost_are_recorded_for_stream_and_json(proxy):
    [account] = await proxy.add_accounts("acc_u")
    await proxy.post(CODEX, codex_body("hi", reasoning={"effort": "high"}), {"session-id": "sess"})
    await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": False})
    rows = await proxy.request_logs(2)
    assert len(rows) == 2
    by_route = {row["route"]: row for row in rows}
    stream, json_row = by_route[CODEX], by_route["/v1/responses"]
    for row in (stream, json_row):
        assert row["status"] == 200 and row["account_id"] == account["id"]
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["cost_usd"] > 0 and row["transport"] == "http" and row["attempts"] == 1
        assert row["ttft_ms"] is not None and row["latency_ms"] >= row["ttft_ms"]
    assert stream["reasoning_effort"] == "high" and stream["reasoning_tokens"] > 0
    assert stream["session_key_hash"] and "sess" not in stream["session_key_hash"]


async def test_a_client_that_disconnects_is_still_recorded(proxy):
    await proxy.add_accounts("acc_slow", deltas=50, delta_interval_ms=40)
    async with aiohttp.ClientSession() as session:
        response = await session.post(proxy.url + CODEX, data=orjson.dumps(codex_body("hi")))
        await response.content.readuntil(b"response.output_text.delta")
        response.close()  # hang up mid-stream
    [row] = await proxy.request_logs(1)
    assert row["status"] == 499 and row["error_code"] == "client_disconnected"
    await eventually(  # the upstream stream is cancelled too
        lambda: proxy.fake.account_stats("acc_slow"), lambda stats: stats["current_streams"] == 0
    )
    [account] = await proxy.accounts()
    assert account["live"]["in_flight"] == 0
