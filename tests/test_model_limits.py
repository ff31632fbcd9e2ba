"""Per-model limits: an account out of one model's bucket (the backend's `codex_other` limit family,
x-codex-other-* headers) is routed around for that model only, keeps serving the others, and shows
the bucket in the account API."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_proxy_websocket import codex_frame, set_transport, turn, ws_url

# Model limits: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

SPARK = "gpt-5.3-codex-spark"  # metered by its own bucket on these accounts
BUCKETED = {"other_models": [SPARK], "other_budget_tokens": 100_000}


async def served_models(proxy) -> list[tuple[str, str]]:
    return [(r["account"], r["body"]["model"]) for r in await proxy.turns() if r.get("status", 200) == 200]


async def test_an_account_out_of_one_models_bucket_keeps_serving_the_others(proxy):
    await proxy.add_accounts("acc_out", "acc_ok", plan_type="pro", **BUCKETED)
    await proxy.fake.consume(
        "acc_out", 200_000, model=SPARK
    )  # its spark bucket is spent, its windows are not
    for i in range(6):
        answer = await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK), {"session-id": f"s{i}"})
        assert answer.status == 200, answer.raw
    spark_by = {r["account"] for r in await proxy.turns() if r["body"]["model"] == SPARK}
    assert (await proxy.fake.account_stats("acc_out"))["statuses"].get(
        "429", 0
    ) <= 1  # learned once, then avoided
    for i in range(12):
        answer = await proxy.post(CODEX_ROUTE, codex_body("other"), {"session-id": f"o{i}"})
        assert answer.status == 200, answer.raw
    other_by = [r["account"] for r in await proxy.turns() if r["body"]["model"] == "gpt-5.4"]
    assert "acc_out" in other_by  # still serving other models
    assert (await proxy.fake.account_stats("acc_ok"))["requests"] >= 6
    assert spark_by <= {"acc_out", "acc_ok"}
    accounts = {a["chatgpt_account_id"]: a for a in await proxy.accounts()}
    assert accounts["acc_out"]["status"] == "active"
    [bucket] = accounts["acc_out"]["model_buckets"]
    assert bucket["bucket"] == "codex_other" and bucket["models"] == [SPARK]
    assert bucket["cooldown_until"] > time.time() and bucket["used_percent"] == 100.0
    assert accounts["acc_ok"]["model_buckets"] == []


async def test_every_bucket_spent_is_a_429_for_that_model_only(proxy):
    await proxy.add_accounts("acc_1", "acc_2", plan_type="pro", **BUCKETED)
    for name in ("acc_1", "acc_2"):
        await proxy.fake.consume(name, 200_000, model=SPARK)
    first = await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK))
    again = await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK))
    for answer in (first, again):
        assert answer.status == 429, answer.raw
        assert answer.json()["error"]["code"] == "usage_limit_reached"
        assert 0 < int(answer.headers["Retry-After"]) <= 300 * 60
    assert (
        sum([(await proxy.fake.account_stats(n))["statuses"].get("429", 0) for n in ("acc_1", "acc_2")]) == 2
    )
    assert (await proxy.post(CODEX_ROUTE, codex_body("other"))).status == 200


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_websocket_turns_route_around_a_spent_bucket(proxy, upstream):
    await proxy.add_accounts("acc_out", "acc_ok", plan_type="pro", **BUCKETED)
    await proxy.fake.consume("acc_out", 200_000, model=SPARK)
    await set_transport(proxy, upstream)
    for i in range(4):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(proxy), headers={"session-id": f"ws{i}"}) as ws:
                events = await turn(ws, codex_frame("spark", model=SPARK))
        assert events[-1]["type"] == "response.completed", events[-1]
    await asyncio.sleep(0)
    accounts = {a["chatgpt_account_id"]: a for a in await proxy.accounts()}
    assert accounts["acc_out"]["status"] == "active"
    assert [b["bucket"] for b in accounts["acc_out"]["model_buckets"]] == ["codex_other"]


async def test_the_usage_poll_shows_buckets_and_benches_a_spent_one_for_its_models(proxy):
    await proxy.add_accounts("acc_polled", "acc_other", plan_type="pro", **BUCKETED)
    # The proxy learns which bucket meters spark from one refusal…
    await proxy.fake.consume("acc_polled", 200_000, model=SPARK)
    for i in range(20):
        answer = await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK), {"session-id": f"p{i}"})
        assert answer.status == 200
        if (await proxy.fake.account_stats("acc_polled"))["statuses"].get("429"):
            break
    ctx = proxy.server.app.ctx.proxy
    # …and from the usage poll, the other account's bucket once that one is spent too.
    await proxy.fake.consume("acc_other", 200_000, model=SPARK)
    await ctx.upkeep.poll_usage()

    async def other_buckets() -> list[dict]:
        return next(a for a in await proxy.accounts() if a["chatgpt_account_id"] == "acc_other")[
            "model_buckets"
        ]

    bucket = await eventually(other_buckets, lambda bucket: bucket and bucket[0]["cooldown_until"])
    assert bucket[0]["bucket"] == "codex_other" and bucket[0]["used_percent"] == 100
    before = sum(
        [(await proxy.fake.account_stats(n))["statuses"].get("429", 0) for n in ("acc_polled", "acc_other")]
    )
    answer = await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK))
    assert answer.status == 429 and answer.json()["error"]["code"] == "usage_limit_reached"
    after = sum(
        [(await proxy.fake.account_stats(n))["statuses"].get("429", 0) for n in ("acc_polled", "acc_other")]
    )
    assert after == before  # answered from what the poll said, without asking the backend
