"""Two server processes of two workers each on one PostgreSQL, under load, behave as one pool: one
refresh per account, one usage poller, a state change seen by the other replica within 2 s, every
request logged exactly once, key limits held; SIGTERM to one mid-load loses nothing settled while the
other keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import orjson
import psycopg2
import pytest

from tests.support.databases import fresh_postgres_schema
from tests.support.keys import bearer
from tests.support.live_server import ServerProcess
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_lifecycle_drain import server_env
from tests.test_metrics import parse, scrape

pytestmark = pytest.mark.slow
ACCOUNTS = ("acc_rep_a", "acc_rep_b", "acc_rep_c")
POLL_S = 1.0


async def call(session, url: str, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    async with session.request(method, url + path, json=body, headers=headers or {}) as answer:
        text = await answer.text()
        return answer.status, (
            orjson.loads(text) if text and answer.content_type == "application/json" else {}
        )


async def proxied(session, url: str, key: dict, prompt: str) -> tuple[int, str, bool]:
    """(status, request id, whether the stream ended with response.completed)"""
    async with session.post(
        url + CODEX_ROUTE, data=orjson.dumps(codex_body(prompt)), headers=bearer(key)
    ) as answer:
        raw = await answer.read()
        if answer.status not in (200, 429):
            print("unexpected", url, answer.status, raw[:300])
        return answer.status, answer.headers.get("x-request-id", ""), b"response.completed" in raw


def logged_ids(database_url: str) -> list[str]:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT request_id FROM request_log")
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


async def test_two_replicas_of_two_workers_share_one_pool_under_load(tmp_path, fake_upstream):
    with fresh_postgres_schema() as database_url, contextlib.ExitStack() as stops:

        def replica(name: str) -> ServerProcess:
            env = server_env(
                tmp_path / name,
                fake_upstream,
                database_url=database_url,
                encryption_key_file=str(tmp_path / "shared.key"),
                usage_poll_interval_seconds=str(POLL_S),
                shutdown_drain_seconds="20",
            )
            server = ServerProcess(env, workers=2).start(tmp_path / f"{name}.log")
            stops.callback(server.stop)
            return server

        a = replica("a")
        await a.wait_ready(60)
        b = replica("b")
        await b.wait_ready(60)
        connector = aiohttp.TCPConnector(limit=0, force_close=True)  # new connections reach every worker
        async with aiohttp.ClientSession(connector=connector) as session:
            form = aiohttp.FormData()
            for account in ACCOUNTS:
                form.add_field(
                    "auth_json", orjson.dumps(await fake_upstream.create_account(account)), filename="a.json"
                )
            async with session.post(a.url + "/api/accounts/import", data=form) as answer:
                assert answer.status == 200, await answer.text()
                imported = (await answer.json())["imported"]
            ids = {r["chatgpt_account_id"]: r["id"] for r in imported}

            # A change on A is routed by on every worker of B within 2 s.
            await eventually(lambda: _states(b.url, "active", len(ACCOUNTS)), timeout=10, what="B's roster")
            started = time.monotonic()
            status, _ = await call(session, a.url, "POST", f"/api/accounts/{ids['acc_rep_c']}/pause")
            assert status == 200
            await eventually(
                lambda: _paused_everywhere(b.url, ids["acc_rep_c"]), timeout=5, what="B to see the pause"
            )
            assert time.monotonic() - started < 2.0 + 0.5  # (the last scrapes confirm every worker)
            await call(session, a.url, "POST", f"/api/accounts/{ids['acc_rep_c']}/resume")

            # Keys on, one limited key; every account's token expired, so each must be refreshed once.
            spec = {"name": "limited", "limits": [{"quantity": "requests", "window": "day", "max": 25}]}
            _, limited = await call(session, a.url, "POST", "/api/api-keys", spec)
            _, open_key = await call(session, a.url, "POST", "/api/api-keys", {"name": "open"})
            status, _ = await call(session, a.url, "PUT", "/api/settings", {"api_key_auth_enabled": True})
            assert status == 200
            await eventually(
                lambda: _refuses_without_key(session, b.url), timeout=5, what="B to require keys"
            )
            for account in ACCOUNTS:
                await fake_upstream.expire_tokens(account)
            polls_before, window_started = await _usage_polls(fake_upstream), time.monotonic()

            urls = [a.url, b.url]
            results = await asyncio.gather(
                *(proxied(session, urls[i % 2], limited, f"limited {i}") for i in range(40)),
                *(proxied(session, urls[i % 2], open_key, f"open {i}") for i in range(80)),
            )
            limited_ok = [r for r in results[:40] if r[0] == 200]
            assert len(limited_ok) <= 25 and {r[0] for r in results[:40]} <= {200, 429}
            assert len(limited_ok) >= 20  # the limit is the only thing refusing them
            assert [r[0] for r in results[40:]] == [200] * 80 and all(r[2] for r in results[40:])
            for account in ACCOUNTS:
                stats = await fake_upstream.account_stats(account)
                assert (stats["refreshes"], stats["refresh_reused"]) == (1, 0), (account, stats)

            # One usage poller for the whole deployment (four workers could each poll).
            await asyncio.sleep(max(0.0, 4 * POLL_S - (time.monotonic() - window_started)))
            polls = await _usage_polls(fake_upstream) - polls_before
            window = time.monotonic() - window_started
            assert polls <= (window / POLL_S + 2) * len(ACCOUNTS), (polls, window)

            # SIGTERM to A while streams run on both: A's settle and are logged, B keeps serving.
            await fake_upstream.configure(defaults={"deltas": 10, "delta_interval_ms": 150})
            streams = [
                asyncio.create_task(proxied(session, urls[i % 2], open_key, f"slow {i}")) for i in range(12)
            ]
            await asyncio.sleep(0.5)
            a.proc.terminate()
            during = await asyncio.gather(
                *(proxied(session, b.url, open_key, f"during {i}") for i in range(10))
            )
            finished = await asyncio.gather(*streams)
            assert a.proc.wait(30) == 0
            assert [r[0] for r in during] == [200] * 10
            assert all(status == 200 and completed for status, _, completed in finished), finished
            await fake_upstream.configure(defaults={"deltas": 0, "delta_interval_ms": 0})
            after = await proxied(session, b.url, open_key, "after")
            assert after[0] == 200

        # Every request that got an answer with an id is in the request log, exactly once.
        answered = {r[1] for r in (*results, *during, *finished, after) if r[1]}
        rows = await eventually(
            lambda: _rows_covering(database_url, answered), timeout=15, what="the request log"
        )
        assert len(rows) == len(set(rows)), "duplicated request-log rows"


async def _states(url: str, state: str, count: int) -> bool:
    samples = parse((await scrape(url))[1])
    return (
        sum(1 for k in samples if k.startswith("codex_lb_account_state") and f'state="{state}"' in k) == count
    )


async def _paused_everywhere(url: str, account_id: int) -> bool:
    key = f'codex_lb_account_state{{account_id="{account_id}",state="paused"}}'
    for _ in range(4):  # several scrapes, each answered by either worker
        if key not in parse((await scrape(url))[1]):
            return False
    return True


async def _refuses_without_key(session, url: str) -> bool:
    async with session.post(url + CODEX_ROUTE, data=orjson.dumps(codex_body("x"))) as answer:
        await answer.read()
        return answer.status == 401


async def _usage_polls(fake) -> int:
    return len(await fake.requests(limit=100000, path="/backend-api/wham/usage"))


async def _rows_covering(database_url: str, wanted: set[str]):
    rows = await asyncio.to_thread(logged_ids, database_url)
    return rows if wanted <= set(rows) else None
