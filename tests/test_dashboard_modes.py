"""Dashboard sign-in: TOTP, the viewer role, throttling, forwarded headers, trusted_header and disabled
modes, the route table, the audit log and security headers (issue 14)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import aiohttp
import orjson
import pyotp
import pytest

from server.auth import credentials as cred
from server.auth import store
from server.auth.gate import PUBLIC_ROUTES
from server.proxy.pool_usage import CODEX_USAGE_PATH
from tests.conftest import make_settings
from tests.support.dashboard import (
    LOCAL,
    PASSWORD,
    REMOTE,
    TRUST_LOOPBACK_PROXY,
    VIEWER_PASSWORD,
    Browser,
    first_admin,
    sign_in,
)
from tests.support.live_server import serve_in_process


@pytest.fixture
async def server(tmp_path: Path, database_url: str):
    settings = make_settings(tmp_path / "data", database_url, **TRUST_LOOPBACK_PROXY)
    async with serve_in_process(settings) as live:
        yield live


async def test_totp_codes_work_once_and_recovery_codes_once(server, caplog):
    caplog.set_level(logging.DEBUG)
    async with await first_admin(server.url) as admin:
        cookie = admin.cookie()
        code, setup, _ = await admin.call("POST", "/api/auth/totp/setup")
        assert code == 200 and setup["otpauth_uri"].startswith("otpauth://totp/")
        assert setup["qr_svg"].startswith("<svg")
        totp = pyotp.TOTP(setup["secret"])
        step = int(time.time() // 30)
        near = {totp.at((step + d) * 30) for d in (-1, 0, 1)}
        wrong = next(c for c in ("123456", "654321", "111111") if c not in near)
        code, body, _ = await admin.call("POST", "/api/auth/totp/enable", {"code": wrong})
        assert code == 400 and body["error"]["code"] == "invalid_code"
        code, body, _ = await admin.call("POST", "/api/auth/totp/enable", {"code": totp.at(step * 30)})
        assert code == 200 and len(body["recovery_codes"]) == 10
        recovery = body["recovery_codes"]
        assert (await admin.status())["totp_enabled"]
    async with Browser(server.url) as browser:
        code, body, _ = await sign_in(browser)  # answered as a wrong password: no hint that it was right
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        code, body, _ = await sign_in(browser, "wrong password", totp.at((step + 1) * 30))
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        code, body, _ = await sign_in(browser, code=totp.at(step * 30))  # spent when enabling
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        assert (await sign_in(browser, code=totp.at((step + 1) * 30)))[0] == 200
        assert (await sign_in(browser, code=totp.at((step + 1) * 30)))[0] == 401  # replayed
        assert (await sign_in(browser, code=recovery[0]))[0] == 200
        assert (await sign_in(browser, code=recovery[0]))[0] == 401
        assert (await sign_in(browser, code=recovery[2].replace("-", "").upper()))[0] == 200
        assert (await browser.call("POST", "/api/auth/totp/disable", {"code": recovery[1]}))[0] == 204
        assert not (await browser.status())["totp_enabled"]
    async with Browser(server.url) as browser:
        assert (await sign_in(browser))[0] == 200
    for secret in (PASSWORD, setup["secret"], cookie, *recovery):
        assert secret not in caplog.text


async def test_two_factor_sign_in_needs_a_password_first(server):
    async with Browser(server.url, LOCAL) as local:
        code, body, _ = await local.call("POST", "/api/auth/totp/setup")
        assert code == 409 and body["error"]["code"] == "password_required"


async def test_the_viewer_sees_everything_and_changes_nothing(server):
    async with await first_admin(server.url) as admin:
        code, body, _ = await admin.call("PUT", "/api/auth/viewer-password", {"password": PASSWORD})
        assert code == 400 and body["error"]["code"] == "weak_password"  # the admin's own
        code, body, _ = await admin.call("PUT", "/api/auth/viewer-password", {"password": VIEWER_PASSWORD})
        assert code == 204, body
        async with Browser(server.url) as viewer:
            code, body, _ = await sign_in(viewer, VIEWER_PASSWORD)
            assert code == 200 and body == {"role": "viewer"}
            assert (await viewer.status())["role"] == "viewer"
            for path in ("/api/settings", "/api/accounts", "/api/api-keys"):
                assert (await viewer.call("GET", path))[0] == 200, path
            for path in ("/api/audit", "/api/auth/sessions"):  # who signs in from where: admins only
                code, answer, _ = await viewer.call("GET", path)
                assert code == 403 and answer["error"]["code"] == "admin_only", path
            for method, path, body in (
                ("PUT", "/api/settings", {"upstream_stream_transport": "http"}),
                ("POST", "/api/api-keys", {"name": "sneaky"}),
                ("GET", "/api/accounts/1/export", None),
                ("POST", "/api/auth/logout-all", None),
                ("PUT", "/api/auth/viewer-password", {"password": None}),
            ):
                code, answer, _ = await viewer.call(method, path, body)
                assert code == 403 and answer["error"]["code"] == "read_only", path
            assert (await viewer.call("POST", "/api/auth/logout"))[0] == 204
        assert (await admin.call("PUT", "/api/auth/viewer-password", {"password": None}))[0] == 204
        async with Browser(server.url) as viewer:
            assert (await sign_in(viewer, VIEWER_PASSWORD))[0] == 401


async def test_failed_sign_ins_are_throttled_per_address(server, caplog):
    caplog.set_level(logging.WARNING, logger="server.auth")
    await (await first_admin(server.url)).session.close()
    async with Browser(server.url, "198.51.100.7") as attacker, Browser(server.url, "198.51.100.8") as other:
        for _ in range(10):
            assert (await sign_in(attacker, "guess guess"))[0] == 401
        code, body, headers = await sign_in(attacker)
        assert code == 429 and body["error"]["code"] == "too_many_attempts"
        assert 0 < int(headers["Retry-After"]) <= 15 * 60 + 1
        assert (await sign_in(other, "guess guess"))[0] == 401
        assert (await sign_in(other))[0] == 200
    assert "dashboard sign-in refused client=198.51.100.7 reason=password" in caplog.text
    assert "dashboard sign-in throttled client=198.51.100.7" in caplog.text


async def test_forwarded_headers_from_an_untrusted_peer_change_nothing(tmp_path, database_url, caplog):
    caplog.set_level(logging.WARNING, logger="server.auth")
    settings = make_settings(
        tmp_path / "data",
        database_url,
        firewall_trusted_proxy_cidrs="10.0.0.0/8",  # the loopback peer is not a trusted proxy
        firewall_trust_proxy_headers="true",
    )
    async with serve_in_process(settings) as live:
        async with aiohttp.ClientSession() as http:
            async with http.get(live.url + "/api/settings") as response:
                assert response.status == 200  # local, no password yet
            for spoof in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
                async with http.get(live.url + "/api/settings", headers=spoof) as response:
                    assert response.status == 401, spoof
            async with http.get(
                live.url + "/v1/models", headers={"X-Forwarded-For": "127.0.0.1"}
            ) as response:
                assert response.status == 401 and (await response.json())["error"]["code"] == "local_only"
            async with http.post(
                live.url + "/api/auth/password", json={"new_password": PASSWORD}
            ) as response:
                assert response.status == 204
        async with aiohttp.ClientSession() as http:
            for n in range(10):  # each attempt claims to be someone else: all count against the peer
                headers = {"X-Forwarded-For": f"198.51.100.{n}"}
                async with http.post(
                    live.url + "/api/auth/login", json={"password": "guess guess"}, headers=headers
                ) as response:
                    assert response.status == 401
            async with http.post(
                live.url + "/api/auth/login",
                json={"password": PASSWORD},
                headers={"X-Forwarded-For": "10.9.9.9"},
            ) as response:
                assert response.status == 429
    assert "client=127.0.0.1 reason=password" in caplog.text and "client=198.51.100" not in caplog.text


async def test_trusted_header_mode(tmp_path, database_url, caplog):
    caplog.set_level(logging.WARNING, logger="server.auth")
    trusted = make_settings(
        tmp_path / "data", database_url, dashboard_auth_mode="trusted_header", **TRUST_LOOPBACK_PROXY
    )
    untrusted = trusted.with_overrides(firewall_trusted_proxy_cidrs=("10.0.0.0/8",))
    async with serve_in_process(trusted) as live, serve_in_process(untrusted) as direct:
        async with Browser(live.url, LOCAL) as nobody:
            status = await nobody.status()
            assert (
                status["mode"] == "trusted_header"
                and status["proxy_required"]
                and not status["authenticated"]
            )
            code, body, _ = await nobody.call("GET", "/api/settings")
            assert code == 401 and body["error"]["code"] == "proxy_required"  # fail closed, even locally
        async with Browser(live.url, headers={"Remote-User": "alice"}) as alice:
            status = await alice.status()
            assert status["authenticated"] and status["user"] == "alice" and status["role"] == "admin"
            change = {"upstream_stream_transport": "http"}
            assert (await alice.call("PUT", "/api/settings", change))[0] == 200
            _, audit, _ = await alice.call("GET", "/api/audit?action=settings")
            assert audit["events"][0]["actor"] == "alice"
        async with aiohttp.ClientSession() as http:  # the same header straight from a peer we do not trust
            async with http.get(direct.url + "/api/settings", headers={"Remote-User": "alice"}) as response:
                assert response.status == 401 and (await response.json())["error"]["code"] == "proxy_required"
        assert "reason=untrusted_peer" in caplog.text
        # A fallback password (set on the host) signs in without the header.
        await live.app.ctx.db.run(store.set_admin_password, cred.hash_password(PASSWORD), None)
        await live.app.ctx.dashboard_auth.reload()
        async with Browser(live.url) as fallback:
            assert not (await fallback.status())["proxy_required"]
            assert (await fallback.call("GET", "/api/settings"))[0] == 401
            assert (await sign_in(fallback))[0] == 200
            assert (await fallback.call("GET", "/api/settings"))[0] == 200


async def test_disabled_mode_lets_everyone_in_and_warns_at_start(tmp_path, database_url, caplog):
    caplog.set_level(logging.WARNING, logger="server.auth")
    settings = make_settings(
        tmp_path / "data", database_url, dashboard_auth_mode="disabled", **TRUST_LOOPBACK_PROXY
    )
    async with serve_in_process(settings) as live, Browser(live.url) as anyone:
        status = await anyone.status()
        assert status["mode"] == "disabled" and status["authenticated"] and status["role"] == "admin"
        assert (await anyone.call("PUT", "/api/settings", {"upstream_stream_transport": "http"}))[0] == 200
    assert "dashboard sign-in is DISABLED" in caplog.text


def _concrete(path: str) -> str:
    return "/" + re.sub(r"<(\w+)(?::(\w+))?>", lambda m: "1" if m.group(2) == "int" else "x", path)


async def test_every_api_route_refuses_an_unauthenticated_remote_request(server):
    routes = [
        (method, _concrete(route.path))
        for route in server.app.router.routes
        if route.path.startswith("api/")
        for method in route.methods
    ]
    assert len(routes) > 30
    checked = 0
    async with Browser(server.url, REMOTE) as stranger:
        for method, path in routes:
            if (method, path) in PUBLIC_ROUTES:
                continue
            code, body, _ = await stranger.call(method, path, {} if method != "GET" else None)
            assert code == 401, (method, path, code)
            # The Codex CLI's usage route lives under /api but is a proxy route: the key / local rule.
            wanted = "local_only" if path == CODEX_USAGE_PATH else "sign_in_required"
            assert method == "HEAD" or body["error"]["code"] == wanted, (method, path)
            checked += 1
    assert checked == len(routes) - len(PUBLIC_ROUTES)


async def test_the_audit_log_records_who_did_what_and_never_a_secret(server):
    async with Browser(server.url, "198.51.100.20") as stranger:
        assert (await sign_in(stranger, "a wrong guess"))[0] == 401
    async with await first_admin(server.url) as admin:
        assert (await admin.call("PUT", "/api/settings", {"upstream_stream_transport": "http"}))[0] == 200
        code, key, _ = await admin.call("POST", "/api/api-keys", {"name": "ci"})
        assert code == 201
        code, body, _ = await admin.call("GET", "/api/audit")
        assert code == 200
        actions = [event["action"] for event in body["events"]]
        assert actions[:3] == ["keys.create_key", "settings.change_settings", "auth.password_changed"]
        settings_change = body["events"][1]
        assert settings_change["details"] == {"fields": ["upstream_stream_transport"]}
        assert settings_change["actor"] == "admin" and settings_change["target"] == "/api/settings"
        failure = next(e for e in body["events"] if e["action"] == "auth.sign_in_failed")
        assert failure["client_address"] == "198.51.100.20" and failure["details"] == {"reason": "password"}
        everything = orjson.dumps(body).decode()
        assert (
            key["key"] not in everything and PASSWORD not in everything and "a wrong guess" not in everything
        )
        _, only_auth, _ = await admin.call("GET", "/api/audit?action=auth")
        assert {e["action"].split(".")[0] for e in only_auth["events"]} == {"auth"}
        _, page, _ = await admin.call("GET", "/api/audit?limit=1")
        assert len(page["events"]) == 1 and page["next_before_id"] == page["events"][0]["id"]
        _, rest, _ = await admin.call("GET", f"/api/audit?limit=1&before_id={page['next_before_id']}")
        assert rest["events"][0]["id"] < page["events"][0]["id"]
        _, future, _ = await admin.call("GET", f"/api/audit?since={time.time() + 60}")
        assert future == {"events": [], "next_before_id": None}
        code, bad, _ = await admin.call("GET", "/api/audit?limit=lots")
        assert code == 400


async def test_dashboard_answers_carry_security_headers_and_proxy_answers_do_not(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/auth/status") as response:
            csp = response.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
            assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Cache-Control"] == "no-store"
        async with http.get(server.url + "/v1/models") as response:
            assert "Content-Security-Policy" not in response.headers


async def test_a_bogus_or_expired_cookie_is_no_session(tmp_path, database_url):
    settings = make_settings(
        tmp_path / "data", database_url, dashboard_session_max_seconds="60", **TRUST_LOOPBACK_PROXY
    )
    async with serve_in_process(settings) as live:
        await (await first_admin(live.url)).session.close()
        async with Browser(live.url) as forger:
            forger.session.cookie_jar.update_cookies({"codex_lb_session": "forged" * 7})
            assert (await forger.call("GET", "/api/settings"))[0] == 401
        async with Browser(live.url) as browser:
            assert (await sign_in(browser))[0] == 200
            assert (await browser.call("GET", "/api/settings"))[0] == 200
            db = live.app.ctx.db
            token_hash = cred.digest(browser.cookie())
            await db.run(_age_session, token_hash, 61.0)
            await live.app.ctx.dashboard_auth.reload()
            assert (await browser.call("GET", "/api/settings"))[0] == 401


def _age_session(orm_db, token_hash: str, seconds: float) -> None:
    from pony import orm

    with orm.db_session:
        row = orm_db.DashboardSession.get(token_hash=token_hash)
        row.expires_at -= seconds


async def test_bootstrap_failures_count_towards_throttling(server):
    async with Browser(server.url) as visitor:
        for _ in range(10):
            code, _, _ = await visitor.call(
                "POST", "/api/auth/bootstrap", {"token": "x" * 32, "password": PASSWORD}
            )
            assert code == 401
        code, body, _ = await visitor.call(
            "POST", "/api/auth/bootstrap", {"token": "x" * 32, "password": PASSWORD}
        )
        assert code == 429


async def test_a_revoked_session_fails_on_the_next_request_of_this_worker(server):
    async with await first_admin(server.url) as admin:
        async with Browser(server.url) as other:
            assert (await sign_in(other))[0] == 200
            assert (await other.call("GET", "/api/settings"))[0] == 200
            _, body, _ = await admin.call("GET", "/api/auth/sessions")
            target = next(s for s in body["sessions"] if s["client_address"] == REMOTE)
            assert (await admin.call("DELETE", f"/api/auth/sessions/{target['id']}"))[0] == 204
            assert (await other.call("GET", "/api/settings"))[0] == 401
    await asyncio.sleep(0)


async def test_a_signed_in_request_costs_no_database_round_trip_while_cached(server):
    auth = server.app.ctx.dashboard_auth
    async with await first_admin(server.url) as admin:
        before = auth.session_lookups
        for _ in range(20):
            assert (await admin.call("GET", "/api/settings"))[0] == 200
        assert auth.session_lookups - before <= 1


async def test_expired_sessions_are_pruned(server):
    db = server.app.ctx.db
    async with await first_admin(server.url) as admin:
        token_hash = cred.digest(admin.cookie())
    await db.run(_age_session, token_hash, 8 * 86400.0)
    assert await db.run(store.prune, 3600.0) == 1
