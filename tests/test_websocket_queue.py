"""Turns queued on client WebSockets are bounded in bytes, per socket and per worker, not only in count."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body, proxy_settings, serve_proxy

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
KIB = 1024


@pytest.fixture
async def proxy(tmp_path: Path, database_url: str, fake_upstream):
    settings = proxy_settings(
        tmp_path,
        database_url,
        fake_upstream,
        websocket_queued_bytes=str(64 * KIB),
        websocket_queued_bytes_per_worker=str(100 * KIB),
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


def big_turn(n: int) -> str:
    frame = codex_body("x" * (40 * KIB) + f" turn {n}")
    frame.pop("stream")
    return orjson.dumps({"type": "response.create", **frame}).decode()


async def next_error(ws: aiohttp.ClientWebSocketResponse) -> dict:
    while True:
        event = orjson.loads((await ws.receive(timeout=10)).data)
        if event["type"] == "error":
            return event


async def test_queued_bytes_are_bounded_per_socket_and_per_worker(proxy):
    await proxy.add_accounts("acc_q", ttfb_ms=1500)  # each turn runs a while: the next ones queue
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": "http"}):
            pass
        url = proxy.url.replace("http://", "ws://") + CODEX_ROUTE
        a = await session.ws_connect(url, max_msg_size=0)
        b = await session.ws_connect(url, max_msg_size=0)
        c = await session.ws_connect(url, max_msg_size=0)
        try:
            await a.send_str(big_turn(1))  # runs
            await asyncio.sleep(0.2)
            await a.send_str(big_turn(2))  # queues 40 KiB
            await a.send_str(big_turn(3))  # 80 KiB would exceed the socket's 64 KiB
            refused = await next_error(a)
            assert refused["status"] == 429 and refused["error"]["code"] == "too_many_queued_bytes"

            await b.send_str(big_turn(4))
            await asyncio.sleep(0.2)
            await b.send_str(big_turn(5))  # the worker now holds 80 KiB queued
            await c.send_str(big_turn(6))
            await asyncio.sleep(0.2)
            await c.send_str(big_turn(7))  # 120 KiB would exceed the worker's 100 KiB
            busy = await next_error(c)
            assert busy["status"] == 503 and busy["error"]["code"] == "server_busy"
        finally:
            for ws in (a, b, c):
                await ws.close()
    counter = proxy.server.app.ctx.websocket_queued_bytes
    await eventually(lambda: counter.total, lambda total: total == 0)  # closed sockets give their bytes back
