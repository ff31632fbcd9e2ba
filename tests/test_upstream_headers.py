"""Only an allow-list of client headers travels upstream; everything the Codex backend reads still does."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from tests.support.keys import bearer, create_key
from tests.support.proxy import CODEX_ROUTE, codex_body, proxy_settings, serve_proxy

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NEEDED = {
    "originator": "codex_exec",
    "user-agent": "codex_exec/0.169.0 (Linux; x86_64)",
    "version": "0.169.0",
    "session-id": "thread-1",
    "session_id": "thread-1",
    "thread-id": "thread-1",
    "x-client-request-id": "thread-1",
    "x-codex-window-id": "thread-1:0",
    "x-codex-turn-metadata": '{"turn_id":"t1"}',
    "x-codex-beta-features": "feature_a",
    "x-codex-turn-state": "turn_abc",
    "openai-beta": "responses=experimental",
    "x-openai-subagent": "review",
}
WITHHELD = {
    "x-api-key": "sk-clb-withheld-one",
    "api-key": "sk-clb-withheld-two",
    "cookie": "session=withheld",
    "proxy-authorization": "Basic d2l0aGhlbGQ=",
    "x-stainless-os": "Linux",
    "x-codex-lb-debug": "1",
    "x-codex-installation-id": "machine-1",
    "x-custom-thing": "withheld",
    "sec-fetch-site": "same-origin",
    "referer": "http://127.0.0.1/withheld",
}


def _assert_allow_list(seen: dict[str, str], key: str) -> None:
    for name, value in NEEDED.items():
        if name != "openai-beta":  # sockets carry their own beta token
            assert seen.get(name) == value, (name, seen)
    for name in (*WITHHELD, "origin"):
        assert name not in seen, (name, seen)
    assert key not in orjson.dumps(seen).decode()
    assert seen["authorization"].startswith("Bearer ") and "sk-clb-" not in seen["authorization"]


async def _set_transport(proxy, value: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": value}) as r:
            assert r.status == 200


async def test_http_upstream_gets_only_allowed_headers(proxy):
    await proxy.add_accounts("acc_hdr")
    await _set_transport(proxy, "http")
    key = await create_key(proxy.url)
    sent = {**NEEDED, **WITHHELD, "origin": proxy.url, **bearer(key)}
    answer = await proxy.post(CODEX_ROUTE, codex_body(), sent)
    assert answer.status == 200, answer.raw
    _assert_allow_list((await proxy.turns())[-1]["headers"], key["key"])
    assert (await proxy.turns())[-1]["headers"]["openai-beta"] == "responses=experimental"


async def test_websocket_upstream_handshake_gets_only_allowed_headers(proxy):
    await proxy.add_accounts("acc_hdr_ws")
    key = await create_key(proxy.url)
    await _set_transport(proxy, "websocket")
    async with aiohttp.ClientSession() as session:
        ws_url = proxy.url.replace("http://", "ws://") + CODEX_ROUTE
        sent = {**NEEDED, **WITHHELD, "origin": proxy.url, **bearer(key)}
        async with session.ws_connect(ws_url, headers=sent) as ws:
            frame = codex_body()
            frame.pop("stream")
            await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
            while True:
                event = orjson.loads((await ws.receive(timeout=10)).data)
                assert event["type"] != "error", event
                if event["type"] == "response.completed":
                    break
    handshakes = [r for r in await proxy.fake.requests(path=CODEX_ROUTE) if r["kind"] == "handshake"]
    assert handshakes, await proxy.fake.requests(path=CODEX_ROUTE)
    _assert_allow_list(handshakes[-1]["headers"], key["key"])


async def test_a_cookie_one_account_was_given_never_travels_with_another(
    tmp_path, database_url, fake_upstream
):
    """The backend's edge sets cookies on its answers. A cookie jar shared by the upstream session would
    send one account's cookies with every account's requests, tying the accounts together (and no Codex
    CLI sends cookies it was given). A jar keeps no cookies from an IP address, so the fake is reached by
    name here, as the real backend is."""
    await fake_upstream.configure(defaults={"set_cookie": True})
    by_name = fake_upstream.base_url.replace("127.0.0.1", "localhost")
    settings = proxy_settings(
        tmp_path, database_url, fake_upstream, upstream_base_url=by_name, routing_strategy="round_robin"
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_jar_a", "acc_jar_b")
        for turn in range(4):
            async with proxy.session.post(proxy.url + CODEX_ROUTE, json=codex_body(f"turn {turn}")) as r:
                assert r.status == 200
                await r.read()
        served = await fake_upstream.requests(path="/backend-api/codex/responses")
    assert {entry["account"] for entry in served} == {"acc_jar_a", "acc_jar_b"}
    assert [entry["headers"].get("cookie") for entry in served] == [None] * 4
