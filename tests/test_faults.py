"""Faults of the backend, the token endpoint and the database, through the fake's switches: what the
client sees, and that every request is settled exactly once with the usage the client was shown.

(Slow first byte and stalls before content: test_upstream_timeouts.py.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import psycopg2
import pytest

from tests.support.databases import postgres_base_url
from tests.support.live_server import free_port
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, ProxyAnswer, codex_body, proxy_settings, serve_proxy

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _transport(proxy, value: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": value}) as r:
            assert r.status == 200, await r.text()


def _shown_tokens(answers: list[ProxyAnswer]) -> int:
    """Total tokens of the terminal events the clients received."""
    total = 0
    for answer in answers:
        if answer.status == 200 and answer.events() and answer.events()[-1]["type"] == "response.completed":
            total += answer.events()[-1]["response"]["usage"]["total_tokens"]
    return total


async def _settled_exactly_once(proxy, answers: list[ProxyAnswer]) -> list[dict]:
    """One request-log row per request, whose tokens add up to what the clients were shown."""
    await proxy.request_logs(len(answers))
    await asyncio.sleep(0.3)  # a second row per request would have been written by now
    rows = await proxy.logged_requests()
    assert len(rows) == len(answers), rows
    assert len({row["request_id"] for row in rows}) == len(rows)
    assert sum(row["total_tokens"] or 0 for row in rows) == _shown_tokens(answers)
    return rows


@sqlite_only
async def test_5xx_storm_on_one_account_is_invisible(proxy):
    await proxy.add_accounts("acc_storm", failure_rate=1.0, failure_status=502)
    await proxy.add_accounts("acc_calm")
    await _transport(proxy, "http")
    answers = [await proxy.post(CODEX_ROUTE, codex_body(f"turn {n}")) for n in range(6)]
    assert [a.status for a in answers] == [200] * 6
    assert all(a.events()[-1]["type"] == "response.completed" for a in answers)
    rows = await _settled_exactly_once(proxy, answers)
    assert {row["status"] for row in rows} == {200}
    assert (await proxy.served_by()).count("acc_calm") == 6


@sqlite_only
async def test_5xx_storm_on_every_account_answers_502_after_bounded_attempts(proxy):
    await proxy.add_accounts("acc_s1", "acc_s2", failure_rate=1.0, failure_status=503)
    await _transport(proxy, "http")
    answers = [await proxy.post(CODEX_ROUTE, codex_body(f"turn {n}")) for n in range(3)]
    for answer in answers:
        assert answer.status in (502, 503), answer.raw
        assert answer.json()["error"]["type"] == "server_error"
    rows = await _settled_exactly_once(proxy, answers)
    assert all(row["attempts"] <= proxy.settings.max_attempts for row in rows)
    assert len(await proxy.turns()) <= 3 * proxy.settings.max_attempts


@sqlite_only
async def test_in_band_errors_in_a_200_stream_fail_over_invisibly(proxy):
    await proxy.add_accounts("acc_overloaded", overload_in_stream=True)
    await proxy.add_accounts("acc_ready")
    await _transport(proxy, "http")
    answers = [await proxy.post(CODEX_ROUTE, codex_body(f"turn {n}")) for n in range(4)]
    assert [a.status for a in answers] == [200] * 4
    for answer in answers:
        assert [e["type"] for e in answer.events()].count("response.created") == 1
        assert answer.events()[-1]["type"] == "response.completed"
    await _settled_exactly_once(proxy, answers)


@sqlite_only
async def test_a_stream_reset_mid_content_ends_with_a_failure_event(proxy):
    await proxy.add_accounts("acc_cut", cut_stream=True, cut_after_deltas=2, deltas=6)
    await _transport(proxy, "http")
    answer = await proxy.post(CODEX_ROUTE, codex_body())
    assert answer.status == 200  # content had reached the client: the stream carries the failure
    events = answer.events()
    assert any(e["type"] == "response.output_text.delta" for e in events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "stream_incomplete"
    rows = await _settled_exactly_once(proxy, [answer])
    assert rows[0]["status"] == 502 and rows[0]["error_code"] == "stream_incomplete"


@sqlite_only
async def test_malformed_sse_is_passed_over_and_the_turn_still_settles(proxy):
    await proxy.add_accounts("acc_garbled", malformed_sse=True)
    await _transport(proxy, "http")
    answers = [
        await proxy.post(CODEX_ROUTE, codex_body()),
        await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": True}),
        await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": False}),
    ]
    assert [a.status for a in answers] == [200, 200, 200], [a.raw[-300:] for a in answers]
    for answer in answers[:2]:
        # Stream bytes pass through as the backend sent them, garbage included: the proxy itself only
        # needs the terminal event, and a client's parser skips what it cannot read.
        assert _tolerant_events(answer.raw)[-1]["type"] == "response.completed"
    assert answers[2].json()["status"] == "completed"
    rows = await proxy.request_logs(3)
    assert len(rows) == 3 and all(row["status"] == 200 and row["total_tokens"] > 0 for row in rows)


def _tolerant_events(raw: bytes) -> list[dict]:
    events = []
    for block in raw.split(b"\n\n"):
        data = b"".join(line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:"))
        try:
            events.append(orjson.loads(data))
        except orjson.JSONDecodeError:
            continue
    return events


@sqlite_only
async def test_an_abnormal_upstream_socket_close_mid_turn_fails_only_that_turn(proxy):
    await proxy.add_accounts("acc_ws_cut", cut_stream=True, cut_after_deltas=1, deltas=4)
    await _transport(proxy, "websocket")
    ws_url = proxy.url.replace("http://", "ws://") + CODEX_ROUTE
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:

        async def turn(text: str) -> list[dict]:
            frame = codex_body(text)
            frame.pop("stream")
            await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
            events = []
            while not events or events[-1]["type"] not in ("response.completed", "response.failed", "error"):
                events.append(orjson.loads((await ws.receive(timeout=10)).data))
            return events

        cut = await turn("first")
        assert cut[-1]["type"] == "response.failed", cut[-1]
        assert cut[-1]["response"]["error"]["code"] == "stream_incomplete"
        await proxy.fake.configure_account("acc_ws_cut", cut_stream=False)
        again = await turn("second")  # the client socket survived; a new upstream socket serves it
        assert again[-1]["type"] == "response.completed"
    rows = await proxy.request_logs(2)
    assert sorted(row["status"] for row in rows) == [200, 502]
    completed = again[-1]["response"]["usage"]["total_tokens"]
    assert sum(row["total_tokens"] or 0 for row in rows) == completed


@sqlite_only
async def test_the_token_endpoint_down_during_a_refresh_is_not_a_lost_account(proxy):
    await proxy.add_accounts("acc_refresh", refresh_error="unavailable")
    await _transport(proxy, "http")
    await proxy.fake.expire_tokens("acc_refresh")
    answer = await proxy.post(CODEX_ROUTE, codex_body())
    assert answer.status in (502, 503), answer.raw
    assert answer.json()["error"]["type"] == "server_error"
    (account,) = await proxy.accounts()
    assert account["status"] not in ("reauth_required", "deactivated"), account
    await proxy.fake.configure_account("acc_refresh", refresh_error=None)
    answer = await eventually(  # a short cooldown, then the refresh succeeds
        lambda: proxy.post(CODEX_ROUTE, codex_body()),
        lambda answer: answer.status == 200,
        timeout=10,
        interval=0.2,
    )
    assert answer.events()[-1]["type"] == "response.completed"


@sqlite_only
async def test_a_refused_upstream_connection_answers_502_at_once(tmp_path: Path, database_url, fake_upstream):
    closed_port = free_port()  # nothing listens there
    upstream = f"http://127.0.0.1:{closed_port}/backend-api"
    settings = proxy_settings(tmp_path, database_url, fake_upstream, upstream_base_url=upstream)
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_nowhere_1", "acc_nowhere_2")
        await _transport(proxy, "http")
        started = time.monotonic()
        answer = await proxy.post(CODEX_ROUTE, codex_body())
        assert time.monotonic() - started < 3
        assert answer.status == 502 and answer.json()["error"]["code"] == "upstream_unavailable", answer.raw
        rows = await _settled_exactly_once(proxy, [answer])
        assert rows[0]["status"] == 502


@pytest.fixture
def postgres_app_name(database_url: str):
    """Our server's PostgreSQL sessions carry a name of their own, so that terminating them leaves the
    other tests sharing the server alone."""
    return f"clb_fault_{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgres_sessions_killed_under_load(
    tmp_path: Path, database_url, postgres_app_name, fake_upstream
):
    """The proxy keeps serving while its database sessions are terminated; the request-log rows queued
    meanwhile are written once it reconnects (the writer holds up to 100,000 rows)."""
    separator = "&" if "?" in database_url else "?"
    named_url = f"{database_url}{separator}application_name={postgres_app_name}"
    settings = proxy_settings(tmp_path, named_url, fake_upstream)
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_pg_1", "acc_pg_2")
        await _transport(proxy, "http")
        answers: list[ProxyAnswer] = []

        async def client(n: int) -> None:
            for turn in range(5):
                answers.append(await proxy.post(CODEX_ROUTE, codex_body(f"client {n} turn {turn}")))

        load = asyncio.gather(*(client(n) for n in range(4)))
        killed = 0
        for _ in range(3):
            await asyncio.sleep(0.15)
            killed += await asyncio.to_thread(_terminate_sessions, postgres_app_name)
        await load
        assert killed > 0
        assert [a.status for a in answers] == [200] * 20
        await proxy.request_logs(20, timeout=30)
        await asyncio.sleep(1)
        rows = await proxy.logged_requests()
        assert len({row["request_id"] for row in rows}) == 20  # each request logged...
        assert len(rows) == 20  # ...exactly once, though sessions died around the writer's commits
        assert sum(row["total_tokens"] for row in rows) == _shown_tokens(answers)
        async with aiohttp.ClientSession() as session:
            async with session.get(proxy.url + "/health/ready") as response:
                assert response.status == 200


def _terminate_sessions(application_name: str) -> int:
    conn = psycopg2.connect(postgres_base_url())
    conn.autocommit = True
    try:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        return cursor.fetchone()[0]
    finally:
        conn.close()
