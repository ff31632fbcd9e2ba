"""/api/settings: read, change, validation, persistence, and propagation to other servers."""

from __future__ import annotations

import aiohttp

from tests.support.live_server import serve_in_process
from tests.support.polling import eventually


async def _json(session, method, url, body=None):
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json()


async def test_defaults_and_changes(proxy):
    async with aiohttp.ClientSession() as session:
        status, body = await _json(session, "GET", proxy.url + "/api/settings")
        assert status == 200
        assert body == {
            "routing_strategy": "usage_weighted",
            "sticky_sessions": True,
            "prefer_earlier_reset": "off",
            "session_placement": "headroom",
            "upstream_stream_transport": "auto",
            "api_key_auth_enabled": False,
            "pricing_overrides": {},
            "request_log_retention_days": 30.0,
        }
        status, body = await _json(
            session, "PUT", proxy.url + "/api/settings", {"upstream_stream_transport": "http"}
        )
        assert status == 200 and body["upstream_stream_transport"] == "http"
        status, body = await _json(session, "GET", proxy.url + "/api/settings")
        assert body["upstream_stream_transport"] == "http"


async def test_bad_changes_are_refused_and_change_nothing(proxy):
    async with aiohttp.ClientSession() as session:
        for bad in (
            {"upstream_stream_transport": "carrier-pigeon"},
            {"nope": 1},
            {"api_key_auth_enabled": "yes"},
            {},
        ):
            status, body = await _json(session, "PUT", proxy.url + "/api/settings", bad)
            assert status == 400, bad
            assert body["error"]["code"] == "invalid_settings" and body["error"]["message"]
        broken = {"data": b"{broken", "headers": {"Content-Type": "application/json"}}
        async with session.put(proxy.url + "/api/settings", **broken) as response:
            assert response.status == 400
        status, body = await _json(session, "GET", proxy.url + "/api/settings")
        assert body["upstream_stream_transport"] == "auto" and body["api_key_auth_enabled"] is False


async def test_a_change_reaches_another_server_on_the_same_database(proxy):
    async with serve_in_process(proxy.settings) as other:
        async with aiohttp.ClientSession() as session:
            await _json(
                session, "PUT", proxy.url + "/api/settings", {"upstream_stream_transport": "websocket"}
            )
            await eventually(
                lambda: _json(session, "GET", other.url + "/api/settings"),
                lambda answer: answer[1]["upstream_stream_transport"] == "websocket",
                interval=0.1,
            )
