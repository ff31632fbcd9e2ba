"""Hostile or odd input gets the route's own error shape: never a 500, never a traceback."""

from __future__ import annotations

import sqlite3
import time

import aiohttp
import orjson
import pytest
import websockets

from server.runtime import migrator
from server.settings.database_url import sqlite_path
from tests.support.keys import api, bearer, create_key
from tests.support.proxy import CODEX_ROUTE, codex_body

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HUGE_ID = "99999999999999999999999"
ID_ROUTES = [
    ("GET", f"/api/accounts/{HUGE_ID}"),
    ("GET", f"/api/accounts/{HUGE_ID}/usage-history"),
    ("PATCH", f"/api/accounts/{HUGE_ID}"),
    ("POST", f"/api/accounts/{HUGE_ID}/pause"),
    ("POST", f"/api/accounts/{HUGE_ID}/resume"),
    ("DELETE", f"/api/accounts/{HUGE_ID}"),
    ("POST", f"/api/accounts/{HUGE_ID}/refresh"),
    ("POST", f"/api/accounts/{HUGE_ID}/reauth"),
    ("GET", f"/api/accounts/{HUGE_ID}/export"),
    ("PATCH", f"/api/api-keys/{HUGE_ID}"),
    ("DELETE", f"/api/api-keys/{HUGE_ID}"),
    ("POST", f"/api/api-keys/{HUGE_ID}/regenerate"),
    ("GET", f"/api/accounts/-{HUGE_ID}"),
]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_ids_beyond_the_integer_range_are_not_found(proxy):
    async with aiohttp.ClientSession() as session:
        for method, path in ID_ROUTES:
            async with session.request(method, proxy.url + path, json={"name": "x"}) as response:
                body = await response.json()
                assert response.status == 404, (method, path, body)
                assert set(body) == {"error"} and body["error"]["code"] == "not_found", body


@sqlite_only
async def test_a_client_version_of_4300_digits_is_just_unparsable(proxy):
    version = "9" * 4300
    async with aiohttp.ClientSession() as session:
        for path in ("/backend-api/codex/models", "/v1/models"):
            for value in (version, f"0.{version}.0", "0.²³.1"):
                async with session.get(proxy.url + path, params={"client_version": value}) as response:
                    assert response.status == 200, (path, await response.text())
                    assert (await response.json())["models"]


@sqlite_only
async def test_a_new_key_that_has_already_expired_is_refused(proxy):
    status, body = await api(proxy.url, "POST", "/api/api-keys", {"name": "old", "expires_at": 1_000_000})
    assert status == 400 and body["error"]["code"] == "invalid_api_key_spec", body
    assert "expires_at" in body["error"]["message"]
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    status, body = await api(proxy.url, "POST", "/api/api-keys", {"name": "old", "expires_at": past})
    assert status == 400, body
    key = await create_key(proxy.url, expires_at=time.time() + 3600)
    assert key["key"].startswith("sk-clb-")


@pytest.fixture
def short_sqlite_busy_timeout(monkeypatch):
    """The write lock is waited for 30 s in production; half a second keeps the test quick."""
    monkeypatch.setattr(migrator, "SQLITE_BUSY_TIMEOUT_S", 0.5)


@sqlite_only
async def test_a_locked_database_answers_503_with_retry_after(short_sqlite_busy_timeout, proxy):
    await proxy.add_accounts("acc_lock")
    key = await create_key(proxy.url, limits=[{"quantity": "requests", "window": "day", "max": 100}])
    blocker = sqlite3.connect(sqlite_path(proxy.settings.database_url), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        answer = await proxy.post(CODEX_ROUTE, codex_body(), bearer(key))
        assert answer.status == 503, answer.raw
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
        async with websockets.connect(_ws(proxy), additional_headers=bearer(key)) as ws:
            frame = {"type": "response.create", **codex_body()}
            frame.pop("stream")
            await ws.send(orjson.dumps(frame).decode())
            event = orjson.loads(await ws.recv())
            assert event["type"] == "error" and event["status"] == 503, event
        status, body = await api(proxy.url, "POST", "/api/api-keys", {"name": "while locked"})
        assert status == 503 and body["error"]["code"] == "database_unavailable", body
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await proxy.post(CODEX_ROUTE, codex_body(), bearer(key))).status == 200


def _ws(proxy) -> str:
    return proxy.url.replace("http://", "ws://") + CODEX_ROUTE


@sqlite_only
async def test_an_invalid_utf8_text_frame_closes_the_socket_with_1007(proxy, caplog):
    await proxy.add_accounts("acc_utf8")
    async with websockets.connect(_ws(proxy)) as ws:
        await ws.send(b'{"type": "response.create", "model": "\xff\xfe"}', text=True)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert "never retrieved" not in caplog.text
