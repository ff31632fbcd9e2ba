"""Accounts across real server processes: one refresh for 50 callers on 2 replicas, one usage poller
per deployment, sign-ins finished by whichever worker gets the callback, and a wrong key file refused."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream import mint_auth_json
from tests.support.databases import fresh_postgres_schema
from tests.support.live_server import ROOT, ServerProcess, free_port
from tests.support.polling import eventually
from tests.support.proxy import codex_body

pytestmark = pytest.mark.slow


def replica_env(tmp_path, url: str, fake, **extra: str) -> dict[str, str]:
    return {
        "CODEX_LB_DATA_DIR": str(tmp_path / f"data-{len(list(tmp_path.iterdir()))}"),
        "CODEX_LB_DATABASE_URL": url,
        "CODEX_LB_ENCRYPTION_KEY_FILE": str(tmp_path / "shared.key"),  # replicas share the key
        "CODEX_LB_UPSTREAM_BASE_URL": fake.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
        **{f"CODEX_LB_{k.upper()}": v for k, v in extra.items()},
    }


async def start_all(servers: list[ServerProcess], tmp_path) -> None:
    for i, server in enumerate(servers):
        server.start(tmp_path / f"server{i}.log")
    await asyncio.gather(*(s.wait_ready() for s in servers))


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()


async def import_account(url: str, auth: dict) -> dict:
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(auth), filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/accounts/import", data=form) as response:
            body = await response.json()
            assert response.status == 200, body
            return body["imported"][0]


async def listed(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as session, session.get(url + "/api/accounts") as response:
        return (await response.json())["accounts"]


async def test_fifty_callers_on_two_replicas_cause_exactly_one_refresh(tmp_path, fake_upstream):
    with fresh_postgres_schema() as url:
        servers = [
            ServerProcess(replica_env(tmp_path, url, fake_upstream, account_inflight_cap="100"), workers=2)
            for _ in range(2)
        ]
        await start_all(servers, tmp_path)
        try:
            auth = await fake_upstream.create_account("acc_single")
            await import_account(servers[0].url, auth)
            await until_every_worker_serves(servers)
            await fake_upstream.expire_tokens("acc_single")
            # A slow token endpoint widens the window in which every caller sees the 401.
            await fake_upstream.configure_account("acc_single", token_latency_ms=300)
            connector = aiohttp.TCPConnector(limit=0, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def call(i: int) -> int:
                    target = servers[i % 2].url + "/backend-api/codex/responses"
                    async with session.post(target, data=orjson.dumps(codex_body(f"hi {i}"))) as answer:
                        await answer.read()
                        return answer.status

                statuses = await asyncio.gather(*(call(i) for i in range(50)))
            assert statuses == [200] * 50
            stats = await fake_upstream.account_stats("acc_single")
            assert stats["refresh_attempts"] == 1 and stats["refreshes"] == 1, stats
        finally:
            stop_all(servers)


async def until_every_worker_serves(servers: list[ServerProcess], hold: float = 2.0) -> None:
    """Fresh connections may all land on one worker, so the check must keep passing for longer than one
    database poll (1.5 s), by which time a worker that was not sampled has reloaded anyway."""
    await eventually(
        lambda: every_worker_serves(servers), timeout=20, interval=0.1, hold=hold, what="every worker serves"
    )


async def every_worker_serves(servers: list[ServerProcess]) -> bool:
    """Requests over many fresh connections per replica (each may land on another worker) all succeed:
    every worker's roster has loaded the account."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for server in servers:
            for _ in range(8):
                target = server.url + "/backend-api/codex/responses"
                async with session.post(target, data=orjson.dumps(codex_body())) as response:
                    await response.read()
                    if response.status != 200:
                        return False
    return True


async def test_one_usage_poller_across_two_replicas_and_a_successor_when_it_stops(tmp_path, fake_upstream):
    with fresh_postgres_schema() as url:
        servers = [
            ServerProcess(
                replica_env(tmp_path, url, fake_upstream, usage_poll_interval_seconds="0.5"), workers=2
            )
            for _ in range(2)
        ]
        await start_all(servers, tmp_path)
        try:
            await import_account(servers[0].url, await fake_upstream.create_account("acc_polled"))

            def polls(server: ServerProcess) -> int:
                return server.output().count("usage poll done accounts=1")

            await eventually(
                lambda: sum(polls(s) for s in servers), lambda n: n >= 6, timeout=20, interval=0.1
            )
            counts = [polls(s) for s in servers]
            wham = len(await fake_upstream.requests(limit=1000, path="/backend-api/wham/usage"))
            after = sum(polls(s) for s in servers)
            assert sorted(counts)[0] == 0, counts  # one leader polled, the other never did
            # One request per poll (a poll may be between its request and its log line): nobody else polled.
            assert sum(counts) - 1 <= wham <= after + 1, (counts, wham, after)
            leader = servers[counts.index(max(counts))]
            follower = servers[1 - servers.index(leader)]
            leader.stop()
            await eventually(lambda: polls(follower), lambda n: n >= 2, timeout=30, interval=0.1)
        finally:
            stop_all(servers)


async def test_four_workers_finish_sign_ins_whichever_gets_the_callback(tmp_path, fake_upstream):
    env = replica_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", fake_upstream)
    server = ServerProcess(env, workers=4)
    await start_all([server], tmp_path)
    port = int(env["CODEX_LB_OAUTH_CALLBACK_PORT"])
    try:
        connector = aiohttp.TCPConnector(force_close=True)  # spread the starts over the workers
        async with aiohttp.ClientSession(connector=connector) as session:
            flows = []
            for i in range(4):
                await fake_upstream.configure(next_login=f"acc_worker_{i}")
                async with session.post(server.url + "/api/accounts/oauth/start") as response:
                    started = await response.json()
                async with session.get(started["authorize_url"], allow_redirects=False) as answer:
                    flows.append((started["flow_id"], answer.headers["Location"]))
            for i, (_flow_id, callback) in enumerate(flows):
                if i % 2:  # pasted into the dashboard: lands on any worker
                    async with session.post(
                        server.url + "/api/accounts/oauth/complete", json={"callback_url": callback}
                    ) as response:
                        assert response.status == 200, await response.text()
                else:  # through the one listener of this host
                    local = f"http://127.0.0.1:{port}/auth/callback?{urlsplit(callback).query}"

                    async def deliver(local=local):
                        try:
                            async with session.get(local) as answer:
                                return answer.status
                        except aiohttp.ClientConnectionError:
                            return None

                    assert await eventually(deliver, timeout=20, interval=0.1) == 200
            for flow_id, _ in flows:
                async with session.get(server.url + f"/api/accounts/oauth/{flow_id}") as response:
                    assert (await response.json())["status"] == "completed"
        assert sorted(a["chatgpt_account_id"] for a in await listed(server.url)) == [
            f"acc_worker_{i}" for i in range(4)
        ]
        assert server.output().count("listening for sign-in callbacks") >= 1
    finally:
        server.stop()


async def test_a_wrong_encryption_key_file_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    auth = tmp_path / "auth.json"
    auth.write_bytes(orjson.dumps(mint_auth_json("acc_locked")))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CODEX_LB_DATA_DIR": str(data)}
    imported = subprocess.run(
        [sys.executable, "-m", "server.cli", "accounts", "import", str(auth)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    key_file = data / "encryption.key"
    original = key_file.read_bytes()
    key_file.write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    database = (data / "store.db").read_bytes()
    other = tmp_path / "other.json"
    other.write_bytes(orjson.dumps(mint_auth_json("acc_other")))
    refused = subprocess.run(
        [sys.executable, "-m", "server.cli", "accounts", "import", str(other)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "does not open the tokens" in refused.stderr, refused.stderr
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(data)})
    server.start(tmp_path / "server.log")
    try:
        assert server.proc.wait(30) == 2
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if line.startswith("codex-lb:")]
    assert len(lines) == 1 and "does not open the tokens stored in the database" in lines[0], server.output()
    assert "Traceback" not in server.output()
    assert (data / "store.db").read_bytes() == database  # nothing was touched
    key_file.write_bytes(original)  # with the right key it starts
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(data)})
    server.start(tmp_path / "server2.log")
    try:
        await server.wait_ready()
    finally:
        assert server.stop() == 0
