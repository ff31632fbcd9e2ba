"""Client WebSockets through keepalive and drain: protocol pings on idle sockets, `codex.keepalive`
frames while a Codex turn waits for the upstream; on a stop the running turn finishes (or is cut with
response.failed at the deadline) and the socket closes with 1012."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.support.proxy import proxy_settings, serve_proxy
from tests.test_proxy_websocket import SESSION, codex_frame, set_transport, ws_url


@pytest.fixture
async def quick_keepalive_proxy(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(
        tmp_path, database_url, fake_upstream, stream_keepalive_seconds="0.5", websocket_ping_seconds="0.5"
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def test_an_idle_client_socket_is_pinged(quick_keepalive_proxy):
    proxy = quick_keepalive_proxy
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION, autoping=False) as ws:
            message = await ws.receive(timeout=3)
            assert message.type is aiohttp.WSMsgType.PING
            await ws.pong(message.data)


async def test_a_codex_turn_waiting_for_its_upstream_gets_keepalive_frames(quick_keepalive_proxy):
    proxy = quick_keepalive_proxy
    await proxy.add_accounts("acct-keepalive")
    await set_transport(proxy, "http")
    await proxy.fake.configure(defaults={"ttfb_ms": 1800})
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            started = time.monotonic()
            await ws.send_str(orjson.dumps({"type": "response.create", **codex_frame("slow start")}).decode())
            kinds = []
            while not kinds or kinds[-1] not in ("response.completed", "response.failed", "error"):
                message = await ws.receive(timeout=10)
                assert message.type is aiohttp.WSMsgType.TEXT, message
                kinds.append(orjson.loads(message.data)["type"])
    waited = kinds.index("response.created") if "response.created" in kinds else len(kinds)
    assert kinds[:waited].count("codex.keepalive") >= 2, kinds
    assert "codex.keepalive" not in kinds[waited:]  # none once the turn streams
    assert kinds[-1] == "response.completed"
    assert time.monotonic() - started >= 1.8


async def test_a_draining_worker_finishes_the_running_turn_then_closes_with_1012(quick_keepalive_proxy):
    proxy = quick_keepalive_proxy
    await proxy.add_accounts("acct-drain")
    await set_transport(proxy, "http")
    await proxy.fake.configure(defaults={"deltas": 8, "delta_interval_ms": 150})
    app = proxy.server.app
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            await ws.send_str(orjson.dumps({"type": "response.create", **codex_frame("long")}).decode())
            first = orjson.loads((await ws.receive(timeout=10)).data)
            assert first["type"] != "error", first
            drain = asyncio.create_task(app.ctx.drain.run())
            await asyncio.sleep(0.1)
            async with session.get(proxy.url + "/health/ready") as ready:
                assert ready.status == 503 and (await ready.json())["status"] == "draining"
            async with session.post(proxy.url + "/backend-api/codex/responses", json={}) as refused:
                assert refused.status == 503
                assert (await refused.json())["error"]["code"] == "server_shutting_down"
            await ws.send_str(orjson.dumps({"type": "response.create", **codex_frame("late")}).decode())
            kinds, closed = [], None
            while closed is None:
                message = await ws.receive(timeout=10)
                if message.type is aiohttp.WSMsgType.TEXT:
                    event = orjson.loads(message.data)
                    kinds.append(event["type"] if event["type"] != "error" else event["error"]["code"])
                else:
                    closed = message
            await asyncio.wait_for(drain, 10)
    assert "response.completed" in kinds  # the running turn finished
    assert "server_shutting_down" in kinds  # the late one was refused, not queued
    assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1012
    app.ctx.drain.draining = False  # the fixture's own stop drains again


@pytest.mark.parametrize("upstream", ["http", "websocket"])
async def test_a_turn_still_running_at_the_drain_deadline_ends_with_response_failed(
    quick_keepalive_proxy, upstream
):
    proxy = quick_keepalive_proxy
    await proxy.add_accounts("acct-cut")
    await set_transport(proxy, upstream)
    await proxy.fake.configure(defaults={"deltas": 30, "delta_interval_ms": 150})  # ~4.5 s
    app = proxy.server.app
    app.ctx.drain.drain_s = 0.5
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            await ws.send_str(orjson.dumps({"type": "response.create", **codex_frame("endless")}).decode())
            first = orjson.loads((await ws.receive(timeout=10)).data)
            assert first["type"] != "error", first
            started = time.monotonic()
            drain = asyncio.create_task(app.ctx.drain.run())
            last, closed = None, None
            while closed is None:
                message = await ws.receive(timeout=10)
                if message.type is aiohttp.WSMsgType.TEXT:
                    last = orjson.loads(message.data)
                else:
                    closed = message
            await asyncio.wait_for(drain, 10)
    assert last["type"] == "response.failed", last
    assert last["response"]["error"]["code"] == "server_shutting_down"
    assert closed.data == 1012
    assert time.monotonic() - started < 3.0
    assert app.ctx.drain.cut == 1
    app.ctx.drain.draining = False
