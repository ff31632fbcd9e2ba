"""GET /api/accounts builds every account in one pass (rows straight to dicts, the live slot fields read
at once, usage passed through as stored): each account in it must read as its own page does."""

from __future__ import annotations

import time

import aiohttp

from server.balancer.slots import Field
from tests.support.proxy import CODEX_ROUTE, codex_body

SPARK = "gpt-5.3-codex-spark"  # metered by its own bucket on these accounts
BUCKETED = {"other_models": [SPARK], "other_budget_tokens": 100_000}


async def api(proxy, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with proxy.session.request(method, proxy.url + path, json=body) as answer:
        return answer.status, await answer.json()


def ctx_of(proxy):
    return proxy.server.app.ctx.proxy


async def test_the_pool_list_shows_each_account_as_its_own_page_does(proxy):
    imported = await proxy.add_accounts(
        "acc_bucket", "acc_bound", "acc_busy", "acc_cool", plan_type="pro", **BUCKETED
    )
    ids = {a["chatgpt_account_id"]: a["id"] for a in imported}
    slots = {a["chatgpt_account_id"]: a["slot"] for a in imported}
    ctx = ctx_of(proxy)
    await ctx.upkeep.poll_usage()  # every account has a stored usage snapshot
    # acc_bucket: out of the spark bucket (learned from a 429), and it served a request
    for name in ("acc_bound", "acc_busy", "acc_cool"):
        ctx.slots.set(slots[name], Field.COOLDOWN_UNTIL, time.time() + 600)
    await proxy.fake.consume("acc_bucket", 200_000, model=SPARK)
    await proxy.post(CODEX_ROUTE, codex_body("spark", model=SPARK))
    assert (await proxy.post(CODEX_ROUTE, codex_body("other"))).status == 200
    await proxy.request_logs(2)  # written in the background: wait for last_used_at to have them
    # acc_bound: routed through an egress proxy; acc_busy: two streams in flight; acc_cool: cooling down
    status, made = await api(proxy, "POST", "/api/proxies", {"name": "corp", "url": "http://127.0.0.1:9"})
    assert status == 201, made
    status, _ = await api(proxy, "PUT", f"/api/accounts/{ids['acc_bound']}/egress", {"proxy_id": made["id"]})
    assert status == 200
    ctx.slots.set(slots["acc_busy"], Field.COOLDOWN_UNTIL, 0.0)
    ctx.slots.set(slots["acc_busy"], Field.INFLIGHT, 2.0)
    ctx.slots.set(slots["acc_bound"], Field.COOLDOWN_UNTIL, 0.0)

    status, listed = await api(proxy, "GET", "/api/accounts")
    assert status == 200
    by_name = {a["chatgpt_account_id"]: a for a in listed["accounts"]}
    assert [a["id"] for a in listed["accounts"]] == sorted(ids.values())
    for name, shown in by_name.items():
        status, page = await api(proxy, "GET", f"/api/accounts/{ids[name]}")
        assert status == 200
        page.pop("events")
        assert shown == page, name

    assert [b["bucket"] for b in by_name["acc_bucket"]["model_buckets"]] == ["codex_other"]
    assert by_name["acc_bucket"]["last_used_at"] is not None
    assert by_name["acc_bound"]["egress"]["bound_to"] == "proxy:corp"
    assert by_name["acc_busy"]["egress"]["route"] == "direct"
    assert by_name["acc_busy"]["live"]["in_flight"] == 2
    assert by_name["acc_cool"]["live"]["cooldown_until"] > time.time()
    assert by_name["acc_busy"]["live"]["cooldown_until"] is None
    for shown in by_name.values():
        assert shown["usage"] is not None and shown["usage_polled_at"] is not None
        assert shown["status_since"] is not None and shown["status"] == "active"
    ctx.slots.set(slots["acc_busy"], Field.INFLIGHT, 0.0)


async def test_an_empty_pool_lists_no_accounts(proxy):
    async with aiohttp.ClientSession() as session, session.get(proxy.url + "/api/accounts") as answer:
        assert answer.status == 200
        assert await answer.json() == {"accounts": []}
