"""Routing strategy, stickiness, pricing overrides and request-log retention as run-time settings: the
environment gives the default, /api/settings changes them, and the next proxied request obeys."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import orjson
import pytest
from pony import orm

from server.usage import history
from tests.conftest import make_settings
from tests.support.live_server import ServerProcess, free_port, serve_in_process
from tests.support.polling import eventually
from tests.support.proxy import codex_body, proxy_settings
from tests.test_read_your_writes import BURST, burst

DAY = 86400
PRICE = {"input": 1000.0, "cached_input": 100.0, "output": 2000.0}


async def _json(session, method, url, body=None):
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json()


async def change(proxy, changes: dict) -> dict:
    async with aiohttp.ClientSession() as session:
        status, body = await _json(session, "PUT", proxy.url + "/api/settings", changes)
        assert status == 200, body
        return body


async def test_the_new_settings_start_from_the_environment(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(
        tmp_path,
        database_url,
        fake_upstream,
        routing_strategy="least_inflight",
        sticky_sessions="false",
        pricing_overrides='{"My-Model": {"input": 1, "output": 2}}',
        request_log_retention_days="7",
    )
    async with serve_in_process(settings) as server, aiohttp.ClientSession() as session:
        status, body = await _json(session, "GET", server.url + "/api/settings")
        assert status == 200
        assert body["routing_strategy"] == "least_inflight"
        assert body["sticky_sessions"] is False
        assert body["pricing_overrides"] == {"My-Model": {"input": 1.0, "cached_input": 1.0, "output": 2.0}}
        assert body["request_log_retention_days"] == 7.0
        # A stored value wins over the environment; null gives the environment's value back.
        _, body = await _json(
            session, "PUT", server.url + "/api/settings", {"routing_strategy": "round_robin"}
        )
        assert body["routing_strategy"] == "round_robin"
        assert server.app.ctx.proxy.balancer.strategy == "round_robin"
        status, defaults = await _json(session, "GET", server.url + "/api/settings/defaults")
        assert status == 200 and defaults["routing_strategy"] == "least_inflight"
        assert defaults["request_log_retention_days"] == 7.0
        _, body = await _json(session, "PUT", server.url + "/api/settings", {"routing_strategy": None})
        assert body["routing_strategy"] == "least_inflight"
        assert server.app.ctx.proxy.balancer.strategy == "least_inflight"


@pytest.mark.parametrize(
    ("change_", "named"),
    [
        ({"routing_strategy": "random"}, "routing_strategy"),
        ({"routing_strategy": 1}, "routing_strategy"),
        ({"prefer_earlier_reset": "monthly"}, "prefer_earlier_reset"),
        ({"session_placement": "random"}, "session_placement"),
        ({"sticky_sessions": "yes"}, "sticky_sessions"),
        ({"pricing_overrides": []}, "pricing_overrides"),
        ({"pricing_overrides": {"gpt-x": {"input": 1}}}, "pricing_overrides"),
        ({"pricing_overrides": {"gpt-x": {"input": -1, "output": 1}}}, "pricing_overrides"),
        ({"pricing_overrides": {"gpt-x": {"input": 1, "output": "2"}}}, "pricing_overrides"),
        ({"pricing_overrides": {"gpt-x": {"input": 1, "output": 2, "extra": 3}}}, "pricing_overrides"),
        ({"pricing_overrides": {" ": {"input": 1, "output": 2}}}, "pricing_overrides"),
        ({"request_log_retention_days": -1}, "request_log_retention_days"),
        ({"request_log_retention_days": "30"}, "request_log_retention_days"),
        ({"request_log_retention_days": True}, "request_log_retention_days"),
        ({"request_log_retention_days": 100000}, "request_log_retention_days"),
        ({"sticky_sessions": False, "routing_strategy": "fastest"}, "routing_strategy"),
    ],
)
async def test_a_bad_value_is_refused_naming_the_setting_and_changes_nothing(proxy, change_, named):
    async with aiohttp.ClientSession() as session:
        _, before = await _json(session, "GET", proxy.url + "/api/settings")
        status, body = await _json(session, "PUT", proxy.url + "/api/settings", change_)
        assert status == 400
        assert body["error"]["param"] == named and named in body["error"]["message"]
        _, after = await _json(session, "GET", proxy.url + "/api/settings")
        assert after == before


async def test_round_robin_spreads_what_the_default_strategy_concentrates(proxy):
    await proxy.add_accounts("acc_a", "acc_b", "acc_c")
    await proxy.fake.consume("acc_b", 2_000_000)
    await proxy.fake.consume("acc_c", 2_000_000)
    await proxy.serve(3)  # the balancer learns every account's windows from its answers
    before = Counter(await proxy.serve(6))
    await change(proxy, {"routing_strategy": "round_robin"})
    after = Counter(await proxy.serve(6))
    assert before.most_common(1)[0][1] >= 5, before
    assert after == {"acc_a": 2, "acc_b": 2, "acc_c": 2}
    logs = await proxy.request_logs(15)
    assert [row["routing"] for row in logs[:6]] == ["round_robin"] * 6


async def test_turning_stickiness_off_spreads_one_conversation(proxy):
    await proxy.add_accounts("acc_a", "acc_b", "acc_c")
    await change(proxy, {"routing_strategy": "round_robin"})
    assert len(set(await proxy.serve(4, session_key="conversation-1"))) == 1
    await change(proxy, {"sticky_sessions": False})
    assert Counter(await proxy.serve(6, session_key="conversation-1")) == {
        "acc_a": 2,
        "acc_b": 2,
        "acc_c": 2,
    }
    await change(proxy, {"sticky_sessions": True})
    assert len(set(await proxy.serve(4, session_key="conversation-1"))) == 1
    routings = [row["routing"] for row in await proxy.request_logs(14)]
    # Newest first: the conversation's first turn was placed ("headroom"), the rest stuck to it.
    assert routings == ["sticky"] * 4 + ["round_robin"] * 6 + ["sticky"] * 3 + ["headroom"]


async def test_a_price_override_changes_the_cost_in_the_request_log(proxy):
    await proxy.add_accounts("acc_a")
    await proxy.serve(1)
    body = await change(proxy, {"pricing_overrides": {" GPT-5.4 ": PRICE}})
    assert body["pricing_overrides"] == {"gpt-5.4": PRICE}
    await proxy.serve(1)
    await change(proxy, {"pricing_overrides": None})
    await proxy.serve(1)
    newest, overridden, builtin = await proxy.request_logs(3)
    for row in (newest, overridden, builtin):
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    cached = overridden["cached_input_tokens"]
    expected = (
        (overridden["input_tokens"] - cached) * PRICE["input"]
        + cached * PRICE["cached_input"]
        + overridden["output_tokens"] * PRICE["output"]
    ) / 1e6
    assert overridden["cost_usd"] == pytest.approx(expected)
    assert builtin["cost_usd"] < overridden["cost_usd"] / 100
    assert newest["cost_usd"] == pytest.approx(
        builtin["cost_usd"] * newest["total_tokens"] / builtin["total_tokens"], rel=0.5
    )


@orm.db_session
def _raw_rows_before(orm_db: orm.Database, before: float) -> int:
    return orm_db.select(
        "SELECT COUNT(*) FROM request_log WHERE started_at < $before", {}, {"before": before}
    )[0]


async def test_a_shorter_retention_prunes_old_request_logs_on_the_next_pass(tmp_path, database_url):
    settings = make_settings(tmp_path / "data", database_url, usage_rollup_interval_seconds="1")
    async with serve_in_process(settings) as server:
        db = server.app.ctx.db
        now = time.time()
        await db.run(history.fill, history.HistorySpec(rows=400, days=10, now=now), False)
        await asyncio.sleep(1.5)  # a pass with the default 30 days keeps all of them
        assert await db.run(_raw_rows_before, now - 3 * DAY) > 0
        body = await change(server, {"request_log_retention_days": 2})
        assert body["request_log_retention_days"] == 2.0

        async def pruned() -> bool:
            return await db.run(_raw_rows_before, now - 3 * DAY) == 0

        await eventually(pruned, timeout=10, interval=0.1)
        assert await db.run(_raw_rows_before, now) > 0  # the last two days stay


@pytest.fixture
async def two_workers(tmp_path, fake_upstream):
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path / "data"),
        "CODEX_LB_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake_upstream.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
    }
    process = ServerProcess(env, workers=2).start(tmp_path / "server.log")
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()


async def _logs_after(server, seen: int, want: int) -> list[dict]:
    """The `want` newest request-log rows once the log holds `seen + want` (the writer batches)."""
    async with aiohttp.ClientSession() as session:

        async def rows() -> list[dict]:
            _, body = await _json(session, "GET", server.url + "/api/request-logs?limit=200")
            return body["request_logs"]

        await eventually(rows, lambda rows: len(rows) >= seen + want, timeout=15, interval=0.1)
        return (await rows())[:want]


@pytest.mark.slow
async def test_a_change_is_in_force_on_every_worker_when_the_api_answers(two_workers, fake_upstream):
    server = two_workers
    form = aiohttp.FormData()
    for account_id in ("acc_w1", "acc_w2", "acc_w3"):
        form.add_field(
            "auth_json", orjson.dumps(await fake_upstream.create_account(account_id)), filename="a.json"
        )
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/accounts/import", data=form) as answer:
            assert answer.status == 200
    route = server.url + "/backend-api/codex/responses"
    sticky = {"session_id": "one-conversation"}
    seen = 0
    for _ in range(2):
        await change(server, {"routing_strategy": "round_robin", "sticky_sessions": False})
        await change(server, {"pricing_overrides": {"gpt-5.4": PRICE}})
        assert await burst("POST", route, codex_body("hi"), sticky) == [200] * BURST
        rows = await _logs_after(server, seen, BURST)
        seen += BURST
        assert {row["routing"] for row in rows} == {"round_robin"}, server.output()[-3000:]
        for row in rows:
            assert row["cost_usd"] >= row["output_tokens"] * PRICE["output"] / 1e6 > 0
        await change(server, {"routing_strategy": None, "sticky_sessions": None, "pricing_overrides": None})
        assert await burst("POST", route, codex_body("hi"), sticky) == [200] * BURST
        rows = await _logs_after(server, seen, BURST)
        seen += BURST
        routings = [row["routing"] for row in rows]
        # Each worker places the conversation once (the first time it sees it), then keeps it.
        assert all(r.startswith("sticky") or r == "headroom" for r in routings), routings
        assert routings.count("headroom") <= 2, routings
        for row in rows:
            assert row["cost_usd"] < row["output_tokens"] * PRICE["output"] / 1e6 / 50


async def test_another_replica_on_the_same_database_follows(proxy):
    async with serve_in_process(proxy.settings) as other:
        await change(proxy, {"routing_strategy": "least_inflight", "pricing_overrides": {"gpt-5.4": PRICE}})
        replica = other.app.ctx.proxy

        async def followed() -> bool:
            return (
                replica.balancer.strategy == "least_inflight"
                and replica.prices.price_for("gpt-5.4").output == 2000
            )

        await eventually(followed, timeout=5, interval=0.1)
