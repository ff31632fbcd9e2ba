"""Limits hold across workers and replicas: 200 concurrent requests on one key with a token budget,
served by 4 workers of one server and then by 2 servers, all on one PostgreSQL database.

Every request reserves its estimate with one conditional statement before it goes upstream, so the
recorded total may exceed the budget only by what requests in flight used beyond their reservations
(docs/api-keys.md, "How limits are enforced"). With an estimate that covers each request (`covered`) that is
nothing but the last request's, which holds only what the budget had left; with no output allowance
(`uncovered`) it is at most in-flight requests x their excess.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import aiohttp
import orjson
import pytest

from server.runtime import migrator
from tests.support.databases import fresh_postgres_schema
from tests.support.keys import create_key, set_key_auth
from tests.support.live_server import ServerProcess
from tests.support.polling import eventually
from tests.support.proxy import codex_body, harness_for

pytestmark = pytest.mark.slow

REQUESTS = 200
LIMIT = 3000
CODEX = "/backend-api/codex/responses"
LONG_REPLY = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)


def _query(url: str, sql: str, *params) -> list[tuple]:
    conn = migrator.connect(url)
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        conn.close()


async def _fire(urls: list[str], key: str) -> tuple[list[int], int]:
    """Final statuses of REQUESTS concurrent requests, and how many attempts they took."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    body = orjson.dumps(codex_body("count me"))
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=120)
    attempts = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> int:
            # A well-behaved client: a 429 saying running requests hold the budget is retried after
            # its retry-after (1 s); a 429 saying the budget is spent is final.
            nonlocal attempts
            for _ in range(60):
                attempts += 1
                async with session.post(urls[i % len(urls)] + CODEX, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status != 429 or b"held_by_running_requests" not in answer:
                        return response.status
                    await asyncio.sleep(float(response.headers["retry-after"]))
            return 0

        statuses = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    return statuses, attempts


async def _settled(url: str, key_id: int, attempts: int, timeout: float = 30.0) -> tuple[float, float, int]:
    """(used, reserved, logged rows) once nothing is reserved and every request is in the log."""

    def counted() -> tuple[float, float, int]:
        used, reserved = _query(
            url, "SELECT COALESCE(SUM(used), 0), COALESCE(SUM(reserved), 0) FROM api_key_counter"
        )[0]
        logged = _query(url, "SELECT COUNT(*) FROM request_log WHERE api_key_id = %s", key_id)[0][0]
        return float(used), float(reserved), int(logged)

    return await eventually(
        counted, lambda seen: seen[1] == 0 and seen[2] == attempts, timeout=timeout, interval=0.1
    )


async def _scenario(tmp_path, fake, processes: list[int], allowance: int, reply: str | None) -> dict:
    with fresh_postgres_schema() as url:
        env = {
            "CODEX_LB_DATA_DIR": str(tmp_path / "data"),  # shared: the replicas need one encryption key
            "CODEX_LB_DATABASE_URL": url,
            "CODEX_LB_UPSTREAM_BASE_URL": fake.base_url,
            "CODEX_LB_AUTH_BASE_URL": fake.auth_url,
            "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "100",
            "CODEX_LB_KEY_OUTPUT_ALLOWANCE_TOKENS": str(allowance),
        }
        servers = [ServerProcess(env, workers=n) for n in processes]
        for i, server in enumerate(servers):
            server.start(tmp_path / f"server{i}.log")
        try:
            await asyncio.gather(*(server.wait_ready(60) for server in servers))
            behaviour = {"ttfb_ms": 50, **({"reply_text": reply} if reply else {})}
            async with harness_for(SimpleNamespace(url=servers[0].url), fake, None) as harness:
                await harness.add_accounts("acc_1", "acc_2", "acc_3", "acc_4", **behaviour)
            key = await create_key(
                servers[0].url, limits=[{"quantity": "tokens", "window": "day", "max": LIMIT}]
            )
            await set_key_auth(servers[0].url, True)
            for server in servers:  # every worker of every replica has reloaded the key and the setting
                await _wait_for_key(server.url, key["key"])
            statuses, attempts = await _fire([s.url for s in servers], key["key"])
            used, reserved, logged = await _settled(url, key["id"], attempts)
            rows = _query(
                url,
                "SELECT status, total_tokens FROM request_log WHERE api_key_id = %s",
                key["id"],
            )
            upstream = sum(
                a["tokens_in"] + a["tokens_out"] for a in (await fake.stats())["accounts"].values()
            )
            leftover = _query(url, "SELECT COUNT(*) FROM api_key_reservation")[0][0]
        finally:
            for server in servers:
                server.stop()
    served = [tokens for status, tokens in rows if status == 200]
    return {
        "ok": statuses.count(200),
        "limited": statuses.count(429),
        "other": [s for s in statuses if s not in (200, 429)],
        "used": used,
        "reserved": reserved,
        "attempts": attempts,
        "logged": logged,
        "logged_tokens": sum(tokens for _, tokens in rows),
        "served_rows": len(served),
        "max_request_tokens": max(served),
        "upstream_tokens": upstream,
        "leftover_reservations": leftover,
        "overshoot": max(0.0, used - LIMIT),
    }


async def _wait_for_key(url: str, key: str) -> None:
    """Until 40 requests in a row on fresh connections (spread over the workers) pass with the key and
    fail without it."""
    deadline = time.monotonic() + 15
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        streak, since = 0, time.monotonic()
        # Fresh connections may not reach every worker, so the streak must also outlast one database
        # poll (1.5 s), by which time a worker that was not sampled has reloaded anyway.
        while streak < 40 or time.monotonic() - since < 2.0:
            assert time.monotonic() < deadline, f"{url}: the key or key auth did not reach every worker"
            async with session.get(url + "/v1/usage", headers={"Authorization": f"Bearer {key}"}) as keyed:
                with_key = keyed.status
            async with session.post(url + CODEX, data=b"{}") as bare:
                without_key = bare.status
            if (with_key, without_key) == (200, 401):
                streak += 1
            else:
                streak, since = 0, time.monotonic()


def _check(result: dict) -> None:
    # Nothing lost or double-counted: the shared counter, the request log and the upstream agree.
    assert result["other"] == [] and result["ok"] + result["limited"] == REQUESTS, result
    assert result["logged"] == result["attempts"] and result["served_rows"] == result["ok"], result
    assert result["reserved"] == 0 and result["leftover_reservations"] == 0, result
    assert result["used"] == result["logged_tokens"] == result["upstream_tokens"], result
    assert result["limited"] > 0 and result["ok"] > 1, result


@pytest.mark.parametrize("processes", [[4], [2, 2]], ids=["4-workers", "2-servers"])
async def test_a_token_budget_holds_under_200_concurrent_requests(tmp_path, fake_upstream, processes):
    """Each request's estimate covers what it uses; only the last ones, which hold just what the budget
    had left, can go over it, each by less than its own use."""
    result = await _scenario(tmp_path, fake_upstream, processes, allowance=64, reply=None)
    print(f"\ncovered estimate, servers={processes}: {result}")
    _check(result)
    assert result["overshoot"] < result["max_request_tokens"], result
    # Admission stopped because the budget was spent, not earlier: less than one estimate is left.
    estimate = 64 + len(orjson.dumps(codex_body("count me"))) / 4
    assert LIMIT - result["used"] < estimate, result


async def test_overshoot_stays_within_the_bound_when_requests_outgrow_their_estimate(tmp_path, fake_upstream):
    """No output allowance and long replies: each request uses more than it reserved."""
    result = await _scenario(tmp_path, fake_upstream, [4], allowance=0, reply=LONG_REPLY)
    print(f"\nuncovered estimate, servers=[4]: {result}")
    _check(result)
    reserved_each = len(orjson.dumps(codex_body("count me"))) / 4
    excess_each = result["max_request_tokens"] - reserved_each
    # Bound: requests in flight when the budget ran out (at most one budget's worth of reservations,
    # LIMIT / reserved_each) times what each can use beyond its reservation.
    assert result["overshoot"] <= (LIMIT / reserved_each) * excess_each, result
