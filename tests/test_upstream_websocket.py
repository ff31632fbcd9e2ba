"""Upstream WebSocket pieces: settings, the transport rule, proxies from the environment, pool bounds."""

from __future__ import annotations

import asyncio

import pytest

from server.config import ConfigError
from server.proxy.transport import TransportChooser
from server.runtime_settings import defaults
from server.upstream import websocket as upstream_ws
from server.upstream.client import UpstreamClient
from server.upstream.websocket_pool import PoolFull, SocketPool
from tests.conftest import make_settings


def test_transport_settings_are_read_and_checked(tmp_path):
    settings = make_settings(
        tmp_path, upstream_stream_transport="WebSocket", upstream_websocket_trust_env="true"
    )
    assert settings.upstream_stream_transport == "websocket" and settings.upstream_websocket_trust_env
    assert defaults(settings).upstream_stream_transport == "websocket"
    assert make_settings(tmp_path).upstream_stream_transport == "auto"
    with pytest.raises(ConfigError, match="CODEX_LB_UPSTREAM_STREAM_TRANSPORT"):
        make_settings(tmp_path, upstream_stream_transport="pigeon")
    with pytest.raises(ConfigError, match="CODEX_LB_UPSTREAM_WEBSOCKET_TRUST_ENV"):
        make_settings(tmp_path, upstream_websocket_trust_env="maybe")


def test_auto_uses_sockets_for_socket_clients_and_models_that_prefer_them():
    chooser = TransportChooser()
    assert chooser.choose("auto", client_websocket=True, model="gpt-5.3-codex") == "websocket"
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.4-mini") == "websocket"
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.3-codex") == "http"
    assert chooser.choose("http", client_websocket=True, model="gpt-5.5") == "http"
    assert chooser.choose("websocket", client_websocket=False, model="gpt-5.3-codex") == "websocket"
    chooser.upgrade_refused()  # a 426 sends everyone to HTTP for a while
    assert chooser.choose("auto", client_websocket=True, model="gpt-5.5") == "http"


def test_handshake_headers_force_the_beta_token_and_drop_http_only_headers():
    headers = upstream_ws.handshake_headers(
        {"openai-beta": "responses=experimental, other=1", "accept": "text/event-stream", "session-id": "s"},
        "token",
        "acct",
    )
    assert headers["openai-beta"] == "other=1,responses_websockets=2026-02-06"
    assert headers["authorization"] == "Bearer token" and headers["chatgpt-account-id"] == "acct"
    assert "accept" not in headers and headers["session-id"] == "s"


@pytest.mark.parametrize("trust_env", [True, False])
async def test_handshakes_use_environment_proxies_only_when_trusted(tmp_path, monkeypatch, trust_env):
    seen: list[bytes] = []

    async def proxy_server(reader, writer):
        seen.append(await reader.readline())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(proxy_server, "127.0.0.1", 0)
    upstream = await asyncio.start_server(proxy_server, "127.0.0.1", 0)
    proxy_port = proxy.sockets[0].getsockname()[1]
    upstream_port = upstream.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = make_settings(
        tmp_path,
        upstream_base_url=f"http://127.0.0.1:{upstream_port}/backend-api",
        upstream_websocket_trust_env=str(trust_env).lower(),
    )
    client = UpstreamClient(settings)
    await client.start()
    try:
        with pytest.raises(upstream_ws.HandshakeRefused) as refused:
            await upstream_ws.connect(client.session, client.responses_ws_url, {}, 1, "", client.ws_proxy)
        assert refused.value.status == 502
    finally:
        await client.close()
        proxy.close()
        upstream.close()
    [request_line] = seen
    through_proxy = request_line.startswith(b"GET ws://127.0.0.1")  # absolute URI: sent to a proxy
    assert through_proxy is trust_env


class _Socket:
    def __init__(self, account_id: int, key: str = "") -> None:
        self.account_id, self.key = account_id, key
        self.opened_mono = self.last_used_mono = asyncio.get_running_loop().time()
        self.usable = True
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_pool_bounds_per_account_and_in_total():
    pool = SocketPool(per_account=2, total=3, idle_s=60)

    async def opener_for(account_id):
        async def opener():
            return _Socket(account_id)

        return opener

    a1 = await pool.lease(1, "", await opener_for(1))
    a2 = await pool.lease(1, "", await opener_for(1))
    with pytest.raises(PoolFull) as full:
        await pool.lease(1, "", await opener_for(1))  # both of account 1's sockets are busy
    assert not full.value.whole_pool
    b1 = await pool.lease(2, "", await opener_for(2))
    with pytest.raises(PoolFull) as full:
        await pool.lease(3, "", await opener_for(3))
    assert full.value.whole_pool
    pool.give_back(a1, healthy=True)  # idle now: reused, or evicted to make room for another account
    assert await pool.lease(1, "", await opener_for(1)) is a1
    pool.give_back(a1, healthy=True)
    c1 = await pool.lease(3, "", await opener_for(3))
    assert c1.account_id == 3 and pool.live == 3
    await asyncio.sleep(0)
    assert a1.closed
    pool.give_back(a2, healthy=False)
    assert pool.live == 2
    for socket in (b1, c1):
        pool.give_back(socket, healthy=True)
    await pool.close()
    assert pool.live == 0


def test_websocket_url_of_the_backend():
    assert upstream_ws.websocket_url("https://chatgpt.com/backend-api/codex/responses").startswith("wss://")
    assert upstream_ws.websocket_url("http://127.0.0.1:1/x") == "ws://127.0.0.1:1/x"


def test_frames_are_named_without_decoding_and_decoded_on_demand():
    delta = upstream_ws.FrameEvent.parse('{"type":"response.output_text.delta","delta":"hi"}')
    assert delta.name == "response.output_text.delta" and delta._data is None
    assert delta.data()["delta"] == "hi"
    assert delta.sse() == (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n'
    )
    spaced = upstream_ws.FrameEvent.parse('{"sequence_number": 3, "type": "response.completed"}')
    assert spaced.name == "response.completed" and spaced.data()["sequence_number"] == 3
    assert upstream_ws.FrameEvent.parse("[1]") is None and upstream_ws.FrameEvent.parse("nope") is None
