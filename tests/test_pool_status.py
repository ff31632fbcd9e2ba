"""Codex /status through the pool: the usage routes answer the pool's combined windows, and API-key
clients see the pool's windows in the x-codex-* headers (proven with the real Codex CLI's own record)."""

from __future__ import annotations

import glob
import json

import aiohttp
import pytest

from tests.clients.codex_cli import run_codex_exec_async, temporary_codex_home
from tests.support.keys import bearer, create_key
from tests.support.proxy import codex_body, proxy_settings, serve_proxy

CODEX = "/backend-api/codex/responses"
USED = {"acc_low": 1_000_000, "acc_mid": 3_000_000, "acc_high": 9_000_000}  # of a 10 M primary budget


async def pool_with_known_usage(proxy) -> dict[str, float]:
    """Three accounts 10 %, 30 % and 90 % into their short window, as the usage poll reads them."""
    await proxy.add_accounts(*USED)
    for account, tokens in USED.items():
        await proxy.fake.consume(account, tokens)
    await proxy.server.app.ctx.proxy.upkeep.poll_usage()
    accounts = await proxy.accounts()
    return {a["chatgpt_account_id"]: a["live"]["primary_used_percent"] for a in accounts}


async def get(proxy, path: str, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(proxy.url + path, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_both_usage_routes_answer_the_pools_combined_windows(proxy):
    used = await pool_with_known_usage(proxy)
    assert sorted(round(v) for v in used.values()) == [10, 30, 90]
    key = await create_key(proxy.url)
    for path in ("/backend-api/wham/usage", "/api/codex/usage"):
        status, body = await get(proxy, path, bearer(key))
        assert status == 200, body
        primary = body["rate_limit"]["primary_window"]
        assert primary["used_percent"] == 43  # the capacity left across the pool, not the last account's
        assert primary["limit_window_seconds"] == 300 * 60
        assert body["rate_limit"]["allowed"] is True and body["pool"]["accounts"] == 3
    restricted = await create_key(proxy.url, name="low only", allowed_account_ids=[1])
    status, body = await get(proxy, "/api/codex/usage", bearer(restricted))
    assert body["rate_limit"]["primary_window"]["used_percent"] == round(used["acc_low"])
    status, _ = await get(proxy, "/api/codex/usage", {"authorization": "Bearer sk-clb-wrong"})
    assert status == 401


async def test_key_clients_see_the_pools_windows_in_the_headers(proxy):
    await pool_with_known_usage(proxy)
    key = await create_key(proxy.url)
    for i in range(6):
        answer = await proxy.post(CODEX, codex_body("hi"), {**bearer(key), "session-id": f"k-{i}"})
        assert answer.status == 200
        assert answer.headers["x-codex-primary-used-percent"] == "43.3", answer.headers
        assert answer.headers["x-codex-primary-window-minutes"] == "300"
    # A local client without a key sees the serving account's own windows (the setting's default).
    seen = set()
    for i in range(6):
        answer = await proxy.post(CODEX, codex_body("hi"), {"session-id": f"local-{i}"})
        seen.add(answer.headers["x-codex-primary-used-percent"])
    assert "43.3" not in seen


@pytest.fixture
async def hiding_proxy(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(tmp_path, database_url, fake_upstream, hide_upstream_quota="true")
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def test_an_operator_can_hide_upstream_quota_from_key_holders(hiding_proxy):
    proxy = hiding_proxy
    await pool_with_known_usage(proxy)
    key = await create_key(proxy.url)
    answer = await proxy.post(CODEX, codex_body("hi"), bearer(key))
    assert answer.status == 200
    assert not [h for h in answer.headers if h.lower().startswith(("x-codex-primary", "x-codex-secondary"))]
    status, body = await get(proxy, "/backend-api/wham/usage", bearer(key))
    assert status == 403 and body["error"]["code"] == "quota_hidden"


@pytest.mark.slow
@pytest.mark.parametrize("websockets", [False, True], ids=["http", "websocket"])
async def test_the_codex_cli_records_the_pools_windows_not_the_serving_accounts(proxy, tmp_path, websockets):
    used = await pool_with_known_usage(proxy)
    key = await create_key(proxy.url)
    with temporary_codex_home() as home:
        run = await run_codex_exec_async(
            "Say hi",
            base_url=proxy.url + "/backend-api/codex",
            api_key=key["key"],
            cwd=tmp_path,
            codex_home=home,
        )
        assert run.completed, run.describe()
        recorded = []
        for path in glob.glob(str(home / "sessions" / "**" / "*.jsonl"), recursive=True):
            for line in open(path, encoding="utf-8"):  # noqa: SIM115 (a small test file)
                entry = json.loads(line)
                limits = (entry.get("payload") or {}).get("rate_limits")
                if limits:
                    recorded.append(limits)
    assert recorded, "the CLI recorded no rate limits"
    served_by = {r["account"] for r in await proxy.fake.requests(path=CODEX) if r["account"]}
    assert len(served_by) == 1  # one account served the turn, at 10, 30 or 90 % ...
    assert {round(r["primary"]["used_percent"]) for r in recorded} == {43}  # ... the CLI shows the pool's
    assert round(used[served_by.pop()]) in (10, 30, 90)
    assert all(r["primary"]["window_minutes"] == 300 for r in recorded)


async def test_a_keys_own_limit_shows_where_it_is_the_closer_one(proxy):
    await pool_with_known_usage(proxy)  # the pool: 43 % of its short window used
    key = await create_key(proxy.url, limits=[{"quantity": "requests", "window": "day", "max": 4}])
    for i in range(3):
        assert (
            await proxy.post(CODEX, codex_body("hi"), {**bearer(key), "session-id": f"own-{i}"})
        ).status == 200
    status, body = await get(proxy, "/backend-api/wham/usage", bearer(key))
    assert status == 200, body
    primary = body["rate_limit"]["primary_window"]
    assert primary["used_percent"] == 75  # 3 of its 4 requests a day: closer to its end than the pool
    assert primary["limit_window_seconds"] == 86400
    roomy = await create_key(
        proxy.url, name="roomy", limits=[{"quantity": "requests", "window": "day", "max": 1000}]
    )
    status, body = await get(proxy, "/backend-api/wham/usage", bearer(roomy))
    assert body["rate_limit"]["primary_window"]["used_percent"] == 43  # the pool is the closer one
