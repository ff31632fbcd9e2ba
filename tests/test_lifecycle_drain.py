"""SIGTERM to a serving process: what is running finishes (or ends cleanly at the deadline) and is logged;
what arrives meanwhile is refused at once; idle client WebSockets are told to reconnect (1012)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream import mint_auth_json
from server.demo.fake_upstream.client import parse_sse
from tests.support.live_server import ServerProcess, free_port
from tests.support.polling import eventually
from tests.support.proxy import codex_body

pytestmark = pytest.mark.slow

ROUTE = "/backend-api/codex/responses"


def server_env(tmp_path, fake, **extra: str) -> dict[str, str]:
    return {
        "CODEX_LB_DATA_DIR": str(tmp_path / "data"),
        "CODEX_LB_UPSTREAM_BASE_URL": fake.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
        "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "100",
        **{f"CODEX_LB_{k.upper()}": v for k, v in extra.items()},
    }


async def start_with_accounts(server: ServerProcess, tmp_path, accounts: int = 2) -> int:
    """Start, import accounts, and wait until every worker serves: returns the requests that took."""
    server.start(tmp_path / "server.log")
    await server.wait_ready()
    async with aiohttp.ClientSession() as session:
        for i in range(accounts):
            form = aiohttp.FormData()
            auth = orjson.dumps(mint_auth_json(email=f"drain{i}@example.com"))
            form.add_field("auth_json", auth, filename="auth.json")
            async with session.post(server.url + "/api/accounts/import", data=form) as answer:
                assert answer.status == 200, await answer.text()
    warm, streak, workers = 0, 0, set()
    connector = aiohttp.TCPConnector(force_close=True)  # new connections reach every worker
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ask() -> set[int]:
            async with session.get(server.url + "/health/live") as answer:
                workers.add((await answer.json())["worker"])
            return workers

        await eventually(ask, lambda workers: len(workers) >= server.workers, timeout=30, interval=0)
        while streak < 8:
            assert time.monotonic() < deadline, server.output()[-3000:]
            async with session.post(server.url + ROUTE, json=codex_body("warm up")) as answer:
                await answer.read()
                warm += 1
                streak = streak + 1 if answer.status == 200 else 0
            if streak == 0:
                await asyncio.sleep(0.2)
    return warm


def logged(server: ServerProcess) -> list[tuple[int, str]]:
    conn = sqlite3.connect(server.env["CODEX_LB_DATA_DIR"] + "/store.db")
    try:
        return conn.execute("SELECT status, error_code FROM request_log ORDER BY id").fetchall()
    finally:
        conn.close()


def held_leases(server: ServerProcess) -> list[str]:
    conn = sqlite3.connect(server.env["CODEX_LB_DATA_DIR"] + "/store.db")
    try:
        return [row[0] for row in conn.execute("SELECT name FROM lease WHERE expires_at > ?", (time.time(),))]
    finally:
        conn.close()


class Streams:
    """N streaming requests, each known to be streaming once its first bytes arrived."""

    def __init__(self, session: aiohttp.ClientSession, url: str, count: int) -> None:
        self.streaming = 0
        self.tasks = [asyncio.create_task(self._one(session, url, i)) for i in range(count)]

    async def _one(self, session, url: str, i: int) -> list[dict]:
        async with session.post(url + ROUTE, json=codex_body(f"long turn {i}")) as answer:
            assert answer.status == 200
            first = await answer.content.readany()
            self.streaming += 1
            return parse_sse(first + await answer.read())

    async def all_streaming(self, timeout: float = 20.0) -> None:
        await eventually(lambda: self.streaming, lambda started: started == len(self.tasks), timeout=timeout)

    async def results(self) -> list[list[dict]]:
        return await asyncio.gather(*self.tasks)


async def refused_at_once(url: str) -> tuple[int | str, float]:
    """A new connection while the server drains: its answer (status or 'refused') and how long it took."""
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.post(url + ROUTE, json=codex_body("too late")) as answer:
                return answer.status, time.monotonic() - started
    except aiohttp.ClientConnectorError:
        return "refused", time.monotonic() - started


async def test_sigterm_during_twenty_streams_lets_every_one_complete_and_be_logged(tmp_path, fake_upstream):
    server = ServerProcess(server_env(tmp_path, fake_upstream), workers=2)
    try:
        warm = await start_with_accounts(server, tmp_path)
        await fake_upstream.configure(defaults={"deltas": 16, "delta_interval_ms": 250})  # ~4 s per stream
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            streams = Streams(session, server.url, 20)
            await streams.all_streaming()
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.3)
            answer, took = await refused_at_once(server.url)
            results = await streams.results()
        code = await asyncio.to_thread(server.proc.wait, 30)
        exited = time.monotonic() - signalled
    finally:
        server.stop()
    assert code == 0, server.output()[-3000:]
    assert answer in (503, "refused") and took < 1.0, (answer, took)
    assert all(events[-1]["type"] == "response.completed" for events in results)
    assert exited < 10, exited
    rows = logged(server)
    assert len(rows) == warm + 20
    assert rows[-20:] == [(200, "")] * 20
    assert "drain deadline reached" not in server.output()
    assert held_leases(server) == []  # released on the way out: the next instance need not wait


async def test_streams_still_running_at_the_deadline_end_with_response_failed_and_are_logged(
    tmp_path, fake_upstream
):
    server = ServerProcess(server_env(tmp_path, fake_upstream, shutdown_drain_seconds="1"), workers=1)
    try:
        warm = await start_with_accounts(server, tmp_path, accounts=1)
        await fake_upstream.configure(defaults={"deltas": 40, "delta_interval_ms": 250})  # ~10 s per stream
        async with aiohttp.ClientSession() as session:
            idle_socket = await session.ws_connect(server.url.replace("http", "ws") + ROUTE)
            streams = Streams(session, server.url, 4)
            await streams.all_streaming()
            signalled = time.monotonic()  # before: the server's deadline may start before send_signal returns
            server.proc.send_signal(signal.SIGTERM)
            closed = await idle_socket.receive(timeout=5)
            closed_after = time.monotonic() - signalled
            results = await streams.results()
            cut_after = time.monotonic() - signalled
        code = await asyncio.to_thread(server.proc.wait, 30)
    finally:
        server.stop()
    assert code == 0, server.output()[-3000:]
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1012
    assert closed_after < 1.0
    for events in results:
        assert events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["error"]["code"] == "server_shutting_down"
    assert 1.0 <= cut_after < 5.0
    rows = logged(server)
    assert len(rows) == warm + 4
    assert rows[-4:] == [(502, "server_shutting_down")] * 4
