"""A 401 followed by a successful refresh retries the same account with its new token, attempt-free."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.proxy import codex_body
from tests.test_proxy_websocket import codex_frame, set_transport, turn, ws_url

CODEX = "/backend-api/codex/responses"


async def test_revoked_tokens_on_every_account_cost_no_request(proxy):
    accounts = ("acc_r1", "acc_r2", "acc_r3")
    await proxy.add_accounts(*accounts, token_latency_ms=150)
    for account in accounts:
        await proxy.fake.expire_tokens(account)
    answers = await asyncio.gather(*(proxy.post(CODEX, codex_body(f"q{i}")) for i in range(30)))
    assert [a.status for a in answers] == [200] * 30, [a.raw for a in answers if a.status != 200]
    for account in accounts:
        stats = await proxy.fake.account_stats(account)
        assert stats.get("refreshes") == 1, (account, stats)
        assert stats.get("refresh_reused", 0) == 0
    rows = await proxy.request_logs(30)
    # A refreshed retry is not another attempt: only moving to another account is.
    assert {row["attempts"] for row in rows} == {1}


async def test_a_refreshed_account_is_retried_even_on_the_last_attempt(proxy, fake_upstream):
    await proxy.add_accounts("acc_s1", "acc_s2", "acc_s3", token_latency_ms=50)
    for account in ("acc_s1", "acc_s2", "acc_s3"):
        await proxy.fake.expire_tokens(account)
    # One session: it meets each account's 401 one after the other only if a refresh spends an attempt.
    answer = await proxy.post(CODEX, codex_body("hi"), {"session-id": "one-thread"})
    assert answer.status == 200, answer.raw
    assert answer.headers["x-codex-lb-attempts"] == "1"


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_websocket_turns_on_revoked_tokens_all_succeed_with_one_refresh_each(proxy, upstream):
    accounts = ("acc_w1", "acc_w2", "acc_w3")
    await proxy.add_accounts(*accounts, token_latency_ms=150)
    await set_transport(proxy, upstream)
    for account in accounts:
        await proxy.fake.expire_tokens(account)

    async def one(i: int) -> str:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(proxy), headers={"session-id": f"w{i}"}) as ws:
                events = await turn(ws, codex_frame(f"q{i}"))
        return events[-1]["type"]

    assert await asyncio.gather(*(one(i) for i in range(30))) == ["response.completed"] * 30
    for account in accounts:
        assert (await proxy.fake.account_stats(account)).get("refreshes") == 1, account
