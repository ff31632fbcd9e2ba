"""Egress proxies per account: each account's traffic (Responses over HTTP and WebSocket, compaction,
transcription, models, usage polling, token refresh) leaves through its own proxy, proven by the address
the fake backend saw; a proxy that is down fails closed; the test action reports the exit address."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import orjson
import pytest

from server.models.sync import ModelSyncer
from tests.support.egress_proxies import HttpConnectProxy, Socks5Proxy
from tests.support.live_server import ROOT
from tests.support.proxy import codex_body, proxy_settings, serve_proxy

CODEX = "/backend-api/codex/responses"
EXITS = {"acc_http": "127.0.0.2", "acc_socks": "127.0.0.3", "acc_direct": "127.0.0.1"}


@pytest.fixture
async def tunnels():
    http = HttpConnectProxy("127.0.0.2", "alice", "s3cret-http")
    socks = Socks5Proxy("127.0.0.3", "bob", "s3cret-socks")
    await http.start()
    await socks.start()
    yield http, socks
    await http.stop()
    await socks.stop()


def serve(tmp_path, database_url, fake_upstream, **extra):
    settings = proxy_settings(
        tmp_path, database_url, fake_upstream, egress_probe_url=fake_upstream.url + "/ip", **extra
    )
    return serve_proxy(settings, fake_upstream)


async def api(proxy, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, proxy.url + path, json=body) as answer:
            return answer.status, await answer.json()


async def set_up_routes(proxy, http, socks) -> dict[str, int]:
    """Three accounts: one behind the HTTP proxy, one behind a pool holding the SOCKS5 proxy, one direct."""
    imported = await proxy.add_accounts("acc_http", "acc_socks", "acc_direct")
    ids = {a["chatgpt_account_id"]: a["id"] for a in imported}
    status, made = await api(
        proxy,
        "POST",
        "/api/proxies",
        {"name": "corp", "url": f"http://alice:s3cret-http@127.0.0.1:{http.port}"},
    )
    assert status == 201, made
    assert made["has_credentials"] and "s3cret" not in orjson.dumps(made).decode()
    status, pooled = await api(
        proxy,
        "POST",
        "/api/proxies",
        {
            "name": "nl-1",
            "url": f"socks5://127.0.0.1:{socks.port}",
            "username": "bob",
            "password": "s3cret-socks",
            "pool": "nl",
            "weight": 3,
        },
    )
    assert status == 201, pooled
    assert (await api(proxy, "PUT", f"/api/accounts/{ids['acc_http']}/egress", {"proxy_id": made["id"]}))[
        0
    ] == 200
    assert (await api(proxy, "PUT", f"/api/accounts/{ids['acc_socks']}/egress", {"pool": "nl"}))[0] == 200
    return ids


async def peers_by_account(fake) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for entry in await fake.requests(limit=2000):
        if entry.get("account"):
            seen.setdefault(entry["account"], set()).add(entry["peer"])
    return seen


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_each_accounts_traffic_leaves_through_its_own_proxy(
    tmp_path, database_url, fake_upstream, tunnels, transport
):
    http, socks = tunnels
    async with serve(tmp_path, database_url, fake_upstream, upstream_stream_transport=transport) as proxy:
        ids = await set_up_routes(proxy, http, socks)
        for i in range(18):  # enough conversations that every account serves some
            answer = await proxy.post(CODEX, codex_body("hi"), {"session-id": f"conv-{i}"})
            assert answer.status == 200, answer.raw
        for _ in range(6):
            answer = await proxy.post(
                f"{CODEX}/compact", {"model": "gpt-5.4", "input": [], "instructions": "x"}
            )
            assert answer.status == 200, answer.raw
            form = aiohttp.FormData()
            form.add_field("file", b"RIFF" + b"\0" * 200, filename="v.wav", content_type="audio/wav")
            async with aiohttp.ClientSession() as session:
                async with session.post(proxy.url + "/backend-api/transcribe", data=form) as reply:
                    assert reply.status == 200
        ctx = proxy.server.app.ctx.proxy
        await ctx.upkeep.poll_usage()  # usage polling of every account
        for account_id in ids.values():  # token refresh of every account
            assert (await api(proxy, "POST", f"/api/accounts/{account_id}/refresh"))[0] == 200
        assert await peers_by_account(fake_upstream) == {name: {peer} for name, peer in EXITS.items()}
        assert http.tunnels and socks.tunnels
        paths = {e["path"] for e in await fake_upstream.requests(limit=2000) if e["peer"] != "127.0.0.1"}
        assert {
            CODEX,
            f"{CODEX}/compact",
            "/backend-api/transcribe",
            "/backend-api/wham/usage",
            "/oauth/token",
        } <= paths
        rows = await proxy.request_logs(30)
        by_account = {v: k for k, v in ids.items()}
        expected = {"acc_http": "proxy:corp", "acc_socks": "proxy:nl-1", "acc_direct": ""}
        assert {(by_account[r["account_id"]], r["egress"]) for r in rows} == set(expected.items())
        if transport == "websocket":
            assert {r["upstream_transport"] for r in rows if r["route"] == CODEX} == {"websocket"}


async def test_models_sync_goes_through_the_accounts_route(tmp_path, database_url, fake_upstream, tunnels):
    http, socks = tunnels
    async with serve(tmp_path, database_url, fake_upstream) as proxy:
        imported = await proxy.add_accounts("acc_http")
        status, made = await api(
            proxy,
            "POST",
            "/api/proxies",
            {"name": "corp", "url": f"http://alice:s3cret-http@127.0.0.1:{http.port}"},
        )
        await api(proxy, "PUT", f"/api/accounts/{imported[0]['id']}/egress", {"proxy_id": made["id"]})
        before = len(await fake_upstream.requests(limit=2000, path="/backend-api/codex/models"))
        ctx = proxy.server.app.ctx.proxy
        await ModelSyncer(ctx.db, ctx.upstream, ctx.roster, ctx.refresher, ctx.models, 300).run()
        models = (await fake_upstream.requests(limit=2000, path="/backend-api/codex/models"))[before:]
        assert models and {e["peer"] for e in models} == {"127.0.0.2"}


async def test_a_proxy_that_is_down_fails_closed_and_requests_go_elsewhere(
    tmp_path, database_url, fake_upstream, tunnels
):
    http, socks = tunnels
    async with serve(tmp_path, database_url, fake_upstream) as proxy:
        ids = await set_up_routes(proxy, http, socks)
        await socks.stop()  # the only proxy of acc_socks's pool goes down
        for i in range(18):
            answer = await proxy.post(CODEX, codex_body("hi"), {"session-id": f"down-{i}"})
            assert answer.status == 200, answer.raw  # failover before the first byte
        peers = await peers_by_account(fake_upstream)
        assert "acc_socks" not in peers  # never sent direct instead
        assert peers["acc_http"] == {"127.0.0.2"}
        accounts = {a["id"]: a for a in await proxy.accounts()}
        route = accounts[ids["acc_socks"]]["egress"]
        assert route["available"] is False and "nl-1" in route["reason"], route
        assert accounts[ids["acc_http"]]["egress"]["available"] is True
        status, listed = await api(proxy, "GET", "/api/proxies")
        down = next(p for p in listed["proxies"] if p["name"] == "nl-1")
        assert down["up"] is False and down["down_reason"]
        # Its refresh waits for the proxy rather than going direct.
        status, body = await api(proxy, "POST", f"/api/accounts/{ids['acc_socks']}/refresh")
        assert status == 502 and "egress" in body["error"]["message"]
        assert "acc_socks" not in await peers_by_account(fake_upstream)


async def test_the_test_action_reports_the_exit_address_and_latency(
    tmp_path, database_url, fake_upstream, tunnels
):
    http, socks = tunnels
    async with serve(tmp_path, database_url, fake_upstream) as proxy:
        await set_up_routes(proxy, http, socks)
        status, listed = await api(proxy, "GET", "/api/proxies")
        ids = {p["name"]: p["id"] for p in listed["proxies"]}
        status, result = await api(proxy, "POST", f"/api/proxies/{ids['nl-1']}/test")
        assert status == 200 and result["ok"] is True, result
        assert result["exit_address"] == "127.0.0.3" and result["latency_ms"] > 0
        status, bad = await api(
            proxy,
            "POST",
            "/api/proxies",
            {"name": "wrong", "url": f"http://alice:nope@127.0.0.1:{http.port}"},
        )
        status, result = await api(proxy, "POST", f"/api/proxies/{bad['id']}/test")
        assert result["ok"] is False and result["exit_address"] is None and result["detail"]
        code, out, err = await cli(proxy, "test", "corp")
        assert code == 0, err
        assert "exit_address=127.0.0.2" in out and "latency_ms=" in out
        code, out, err = await cli(proxy, "list")
        assert code == 0 and "corp" in out and "pool=nl" in out and "s3cret" not in out
        code, out, err = await cli(proxy, "test", "wrong")
        assert code == 1 and "FAILED" in out


async def test_credentials_are_encrypted_at_rest_and_never_shown(
    tmp_path, database_url, fake_upstream, tunnels
):
    http, socks = tunnels
    async with serve(tmp_path, database_url, fake_upstream) as proxy:
        await set_up_routes(proxy, http, socks)
        rows = await proxy.server.app.ctx.proxy.db.run(_raw_proxy_rows)
        assert rows and all("s3cret" not in " ".join(map(str, row)) for row in rows)
        status, listed = await api(proxy, "GET", "/api/proxies")
        assert "s3cret" not in orjson.dumps(listed).decode()
        status, refused = await api(proxy, "DELETE", f"/api/proxies/{listed['proxies'][0]['id']}")
        assert status == 400 and "bound" in refused["error"]["message"]


async def test_bad_definitions_are_refused_with_a_reason(proxy):
    for body in (
        {"name": "x", "url": "ftp://h:1"},
        {"name": "x", "url": "socks5://host"},
        {"name": "", "url": "http://h:1"},
        {"name": "x", "url": "http://h:1", "weight": 0},
        {"name": "x", "url": 5},
    ):
        status, answer = await api(proxy, "POST", "/api/proxies", body)
        assert status == 400, (body, answer)
    status, answer = await api(proxy, "PUT", "/api/accounts/999/egress", {"pool": "none"})
    assert status in (400, 404)


def _raw_proxy_rows(db):
    from pony import orm

    with orm.db_session:
        return db.select("SELECT name, url, username, password FROM egress_proxy")


async def cli(proxy, *args: str) -> tuple[int, str, str]:
    import os

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CODEX_LB_DATA_DIR": str(proxy.settings.data_dir),
        "CODEX_LB_DATABASE_URL": proxy.settings.database_url,
        "CODEX_LB_EGRESS_PROBE_URL": proxy.settings.egress_probe_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "proxies",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_a_rebound_account_moves_to_its_new_route_at_once_even_on_open_sockets(
    tmp_path, database_url, fake_upstream, tunnels
):
    http, _ = tunnels
    async with serve(tmp_path, database_url, fake_upstream, upstream_stream_transport="websocket") as proxy:
        (account,) = await proxy.add_accounts("acc_http")
        for _ in range(2):  # an upstream socket opened directly, then kept for the conversation
            assert (await proxy.post(CODEX, codex_body("hi"), {"session-id": "kept"})).status == 200
        assert await peers_by_account(fake_upstream) == {"acc_http": {"127.0.0.1"}}
        status, made = await api(
            proxy,
            "POST",
            "/api/proxies",
            {"name": "corp", "url": f"http://alice:s3cret-http@127.0.0.1:{http.port}"},
        )
        await api(proxy, "PUT", f"/api/accounts/{account['id']}/egress", {"proxy_id": made["id"]})
        before = len(await fake_upstream.requests(limit=2000))
        assert (await proxy.post(CODEX, codex_body("hi"), {"session-id": "kept"})).status == 200
        after = [e for e in (await fake_upstream.requests(limit=2000))[before:] if e.get("account")]
        assert after and {e["peer"] for e in after} == {"127.0.0.2"}
