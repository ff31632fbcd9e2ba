"""Dashboard sign-in across processes: the bootstrap token of two replicas on one PostgreSQL, session
revocation across workers, and the operator's `codex-lb dashboard …` commands."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
import pytest

from tests.support.dashboard import Browser
from tests.support.databases import fresh_postgres_schema
from tests.support.live_server import ROOT, ServerProcess
from tests.support.polling import eventually

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
BANNER = "one-time bootstrap token"


def server_env(tmp_path, url: str, **extra: str) -> dict[str, str]:
    return {
        "CODEX_LB_DATA_DIR": str(tmp_path / f"data-{len(list(tmp_path.iterdir()))}"),
        "CODEX_LB_DATABASE_URL": url,
        "CODEX_LB_ENCRYPTION_KEY_FILE": str(tmp_path / "shared.key"),  # replicas share the key
        "CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
        "CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS": "true",
        **{f"CODEX_LB_{k.upper()}": v for k, v in extra.items()},
    }


async def dashboard_cli(env: dict[str, str], *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    return await codex_lb(env, "dashboard", *args, stdin=stdin)


async def codex_lb(env: dict[str, str], *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode, out.decode(), err.decode()


async def test_two_replicas_on_one_postgresql_accept_the_same_bootstrap_token(tmp_path):
    with fresh_postgres_schema() as url:
        servers = [ServerProcess(server_env(tmp_path, url)) for _ in range(2)]
        for i, server in enumerate(servers):
            server.start(tmp_path / f"server{i}.log")
        try:
            await asyncio.gather(*(s.wait_ready() for s in servers))
            logs = "".join(s.output() for s in servers)
            assert logs.count(BANNER) == 1, "exactly one replica makes and shows the token"
            code, token, _ = await dashboard_cli(servers[0].env, "show-bootstrap-token")
            token = token.strip()
            assert code == 0 and token in logs
            for server in servers:  # each accepts the token (and then refuses the weak password)
                async with Browser(server.url) as visitor:
                    code, body, _ = await visitor.call(
                        "POST", "/api/auth/bootstrap", {"token": token, "password": "short"}
                    )
                    assert code == 400 and body["error"]["code"] == "weak_password"
                    code, _, _ = await visitor.call(
                        "POST", "/api/auth/bootstrap", {"token": "x" + token, "password": PASSWORD}
                    )
                    assert code == 401
            async with Browser(servers[1].url) as visitor:
                body = {"token": token, "password": PASSWORD}
                assert (await visitor.call("POST", "/api/auth/bootstrap", body))[0] == 200
                async with Browser(servers[0].url) as late:
                    assert (await late.call("POST", "/api/auth/bootstrap", body))[0] == 409
                    assert (await late.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
        finally:
            for server in servers:
                server.stop()


async def test_a_revoked_session_is_refused_by_every_worker_within_a_second(tmp_path):
    server = ServerProcess(server_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"), workers=2)
    server.start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        code, out, err = await dashboard_cli(
            server.env, "set-password", "--password-stdin", stdin=PASSWORD.encode() + b"\n"
        )
        assert code == 0, err
        async with Browser(server.url) as browser:
            await eventually(  # the servers learn of the password set on the host
                lambda: browser.call("POST", "/api/auth/login", {"password": PASSWORD}),
                lambda answer: answer[0] == 200,
                timeout=10,
                interval=0.2,
            )
            cookie = {"Cookie": f"codex_lb_session={browser.cookie()}", "X-Forwarded-For": "203.0.113.9"}
            connector = aiohttp.TCPConnector(force_close=True)  # new connections: both workers answer
            async with aiohttp.ClientSession(connector=connector) as fresh:
                for _ in range(20):
                    async with fresh.get(server.url + "/api/settings", headers=cookie) as response:
                        assert response.status == 200
                assert (await browser.call("POST", "/api/auth/logout-all"))[0] == 204
                revoked_at = time.monotonic()
                streak, streak_start = 0, revoked_at
                while streak < 20:
                    async with fresh.get(server.url + "/api/settings", headers=cookie) as response:
                        if response.status != 401:
                            streak, streak_start = 0, time.monotonic()
                        else:
                            streak += 1
                    assert time.monotonic() - revoked_at < 5.0
                # Every worker refuses it (20 new connections in a row) from at most a second on.
                assert streak_start - revoked_at < 1.0
    finally:
        server.stop()


async def test_the_operator_commands(tmp_path):
    env = server_env(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    code, token, _ = await dashboard_cli(env, "show-bootstrap-token")
    assert code == 0 and len(token.strip()) >= 30
    code, again, _ = await dashboard_cli(env, "show-bootstrap-token")
    assert again == token, "the same token until a password is set"
    code, _, err = await dashboard_cli(env, "set-password", "--password-stdin", stdin=b"short\n")
    assert code == 2 and "at least 8 characters" in err
    code, out, _ = await dashboard_cli(
        env, "set-password", "--password-stdin", stdin=PASSWORD.encode() + b"\n"
    )
    assert code == 0 and "password set" in out
    code, _, err = await dashboard_cli(env, "show-bootstrap-token")
    assert code == 1 and "a dashboard password is set" in err
    code, out, _ = await dashboard_cli(
        env, "set-password", "--viewer", "--password-stdin", stdin=b"viewer password\n"
    )
    assert code == 0 and "viewer password set" in out
    code, out, _ = await dashboard_cli(env, "reset-totp")
    assert code == 0 and "two-factor sign-in is off" in out
    code, _, err = await codex_lb(env, "keys", "create", "ci bot")
    assert code == 0, err
    server = ServerProcess(env)
    server.start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        assert BANNER not in server.output()
        async with Browser(server.url) as admin:
            assert (await admin.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
            _, body, _ = await admin.call("GET", "/api/audit?actor=operator (codex-lb command)")
            assert [e["action"] for e in body["events"]] == [
                "keys.create_key",
                "auth.totp_disabled",
                "auth.viewer_password_changed",
                "auth.password_changed",
            ]
        async with Browser(server.url) as viewer:
            code, body, _ = await viewer.call("POST", "/api/auth/login", {"password": "viewer password"})
            assert code == 200 and body["role"] == "viewer"
    finally:
        server.stop()
