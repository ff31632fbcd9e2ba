"""An upstream that hangs before its head (or before its first content) costs one attempt's first-byte
budget, not the 300 s read timeout; the whole failover has a deadline; streaming clients see SSE
keepalive comments meanwhile, and an error event if it all fails."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from server.demo.fake_upstream.client import parse_sse
from tests.support.proxy import CODEX_ROUTE, codex_body, proxy_settings, serve_proxy

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def proxy(tmp_path: Path, database_url: str, fake_upstream):
    settings = proxy_settings(
        tmp_path,
        database_url,
        fake_upstream,
        upstream_first_byte_timeout_seconds="0.6",
        upstream_failover_timeout_seconds="1.5",
        stream_keepalive_seconds="0.2",
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def _http_only(proxy) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": "http"}) as r:
            assert r.status == 200


async def test_a_hanging_account_costs_one_first_byte_budget_then_fails_over(proxy):
    await proxy.add_accounts("acc_hang", ttfb_ms=3_000)
    await proxy.add_accounts("acc_fine")
    await _http_only(proxy)
    for n in range(4):
        started = time.monotonic()
        answer = await proxy.post(CODEX_ROUTE, codex_body(f"turn {n}"))
        assert answer.status == 200, answer.raw
        assert answer.events()[-1]["type"] == "response.completed"
        assert time.monotonic() - started < 1.5
    served = await proxy.served_by()
    assert served.count("acc_hang") <= 2  # a growing cooldown after repeated timeouts
    logs = await proxy.request_logs(4)
    assert all(row["status"] == 200 for row in logs)


async def test_streaming_clients_get_keepalives_then_the_stream(proxy):
    """First byte after 0.5 s (inside the 0.6 s budget): comments every 0.2 s, then the real events."""
    await proxy.add_accounts("acc_slow", ttfb_ms=500)
    await _http_only(proxy)
    answer = await proxy.post(CODEX_ROUTE, codex_body())
    assert answer.status == 200
    assert answer.raw.startswith(b": keepalive\n\n")
    assert answer.events()[-1]["type"] == "response.completed" and answer.text()


async def test_when_every_account_hangs_the_client_hears_within_the_failover_deadline(proxy):
    await proxy.add_accounts("acc_h1", "acc_h2", "acc_h3", ttfb_ms=3_000)
    await _http_only(proxy)
    started = time.monotonic()
    answer = await proxy.post(CODEX_ROUTE, codex_body())
    elapsed = time.monotonic() - started
    assert 1.0 < elapsed < 3.0, elapsed
    assert answer.status == 200 and answer.raw.startswith(b": keepalive")  # the head went out early
    failed = answer.events()[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"]["code"] == "upstream_request_timeout"

    json_body = {**codex_body(), "stream": False}
    started = time.monotonic()
    answer = await proxy.post("/v1/responses", json_body)
    assert answer.status in (503, 504), answer.raw  # all three are cooling down now, or time out again
    assert time.monotonic() - started < 3.0
    logs = await proxy.request_logs(2)
    assert all(row["status"] != 200 for row in logs)


async def test_a_stream_that_stalls_before_content_fails_over(proxy):
    """The head arrives, then nothing after response.created: the same budget applies."""
    await proxy.add_accounts("acc_stall", stall_ms=3_000)
    await proxy.add_accounts("acc_ok")
    await _http_only(proxy)
    for n in range(3):
        started = time.monotonic()
        answer = await proxy.post(CODEX_ROUTE, codex_body(f"stall {n}"))
        assert answer.status == 200 and answer.events()[-1]["type"] == "response.completed"
        assert time.monotonic() - started < 1.5
    assert (await proxy.served_by()).count("acc_ok") == 3
    assert not [e for e in parse_sse(answer.raw) if e["type"] == "error"]


async def test_a_silent_upstream_socket_costs_one_first_byte_budget(proxy):
    """The same budget on upstream WebSockets: a turn on a socket that never answers fails over."""
    import aiohttp
    import orjson

    await proxy.add_accounts("acc_ws_hang", ttfb_ms=3_000)
    await proxy.add_accounts("acc_ws_fine")
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": "websocket"}):
            pass
        url = proxy.url.replace("http://", "ws://") + CODEX_ROUTE
        for n in range(3):
            async with session.ws_connect(url) as ws:
                frame = codex_body(f"socket {n}")
                frame.pop("stream")
                started = time.monotonic()
                await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
                while (event := orjson.loads((await ws.receive(timeout=5)).data))["type"] not in (
                    "response.completed",
                    "response.failed",
                    "error",
                ):
                    pass
                assert event["type"] == "response.completed", event
                assert time.monotonic() - started < 1.5


async def test_chat_streams_get_keepalives_and_an_error_chunk(proxy):
    await proxy.add_accounts("acc_chat_slow", ttfb_ms=3_000)
    await _http_only(proxy)
    body = {"model": "gpt-5.4", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    answer = await proxy.post("/v1/chat/completions", body)
    assert answer.status == 200 and answer.raw.startswith(b": keepalive\n\n")
    last = [line for line in answer.raw.split(b"\n\n") if line.startswith(b"data: ")][-1]
    assert b'"error"' in last and b"upstream_request_timeout" in last
