"""Dashboard sign-in: local rule, bootstrap, password, sessions and cookies, CSRF (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.auth import store
from tests.conftest import make_settings
from tests.support.dashboard import LOCAL, REMOTE, TRUST_LOOPBACK_PROXY, Browser
from tests.support.live_server import serve_in_process
from tests.support.polling import eventually

PASSWORD = "correct horse battery"


@pytest.fixture
async def server(tmp_path: Path, database_url: str):
    settings = make_settings(tmp_path / "data", database_url, **TRUST_LOOPBACK_PROXY)
    async with serve_in_process(settings) as live:
        yield live


async def _set_password_locally(url: str, password: str = PASSWORD) -> Browser:
    browser = Browser(url, LOCAL)
    code, body, _ = await browser.call("POST", "/api/auth/password", {"new_password": password})
    assert code == 204, body
    return browser


async def test_a_local_request_needs_no_sign_in_until_a_password_is_set(server):
    async with Browser(server.url, LOCAL) as local:
        status = await local.status()
        assert status["authenticated"] and status["local_without_password"] and status["role"] == "admin"
        assert not status["bootstrap_required"] and not status["password_set"]
        assert (await local.call("GET", "/api/settings"))[0] == 200
        code, _, _ = await local.call("POST", "/api/auth/password", {"new_password": PASSWORD})
        assert code == 204
        assert local.cookie(), "the local admin stays signed in under the new password"
        assert (await local.call("GET", "/api/settings"))[0] == 200
    async with Browser(server.url, LOCAL) as another_local:
        status = await another_local.status()
        assert not status["authenticated"] and status["password_set"] and not status["local_without_password"]
        code, body, _ = await another_local.call("GET", "/api/settings")
        assert code == 401 and body["error"]["code"] == "sign_in_required"


async def test_a_remote_visitor_sets_the_first_password_with_the_bootstrap_token(server):
    auth = server.app.ctx.dashboard_auth
    token = server.app.ctx.secretbox.decrypt(await server.app.ctx.db.run(store.sealed_bootstrap_token))
    async with Browser(server.url, REMOTE) as visitor:
        status = await visitor.status()
        assert status["bootstrap_required"] and not status["authenticated"]
        code, body, _ = await visitor.call("GET", "/api/accounts")
        assert code == 401 and body["error"]["code"] == "sign_in_required"
        code, body, _ = await visitor.call(
            "POST", "/api/auth/bootstrap", {"token": "nope" * 8, "password": PASSWORD}
        )
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        code, body, _ = await visitor.call(
            "POST", "/api/auth/bootstrap", {"token": token, "password": "short"}
        )
        assert code == 400 and body["error"]["code"] == "weak_password"
        code, body, _ = await visitor.call(
            "POST", "/api/auth/bootstrap", {"token": token, "password": PASSWORD}
        )
        assert code == 200 and body == {"role": "admin"}
        assert (await visitor.call("GET", "/api/accounts"))[0] == 200
        assert (await visitor.status())["password_set"]
    async with Browser(server.url, REMOTE) as late:
        code, body, _ = await late.call("POST", "/api/auth/bootstrap", {"token": token, "password": PASSWORD})
        assert code == 409 and body["error"]["code"] == "password_set"
    assert await server.app.ctx.db.run(store.sealed_bootstrap_token) == ""
    assert not await auth.check_bootstrap_token(token)


async def test_a_configured_bootstrap_token_replaces_the_generated_one(tmp_path, database_url):
    fixed = "operator-chosen-token-0123456789"
    settings = make_settings(
        tmp_path / "data", database_url, dashboard_bootstrap_token=fixed, **TRUST_LOOPBACK_PROXY
    )
    async with serve_in_process(settings) as live, Browser(live.url) as visitor:
        assert await live.app.ctx.db.run(store.sealed_bootstrap_token) == ""
        code, _, _ = await visitor.call("POST", "/api/auth/bootstrap", {"token": fixed, "password": PASSWORD})
        assert code == 200


async def test_sign_in_and_out_with_the_password(server):
    await (await _set_password_locally(server.url)).session.close()
    async with Browser(server.url, REMOTE) as browser:
        code, body, _ = await browser.call("POST", "/api/auth/login", {"password": "wrong password"})
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        assert body["error"]["message"] == "Wrong password or code."
        code, body, headers = await browser.call("POST", "/api/auth/login", {"password": PASSWORD})
        assert code == 200 and body == {"role": "admin"}
        status = await browser.status()
        assert status["authenticated"] and status["role"] == "admin" and not status["bootstrap_required"]
        code, body, _ = await browser.call("GET", "/api/auth/sessions")
        current = [s for s in body["sessions"] if s["current"]]
        assert code == 200 and len(current) == 1 and current[0]["client_address"] == REMOTE
        assert len(body["sessions"]) == 2  # and the local one that set the password
        code, _, headers = await browser.call("POST", "/api/auth/logout")
        assert code == 204
        assert (await browser.call("GET", "/api/settings"))[0] == 401


async def test_the_session_cookie_is_httponly_strict_and_secure_behind_tls(server):
    await (await _set_password_locally(server.url)).session.close()
    async with Browser(server.url) as plain:
        _, _, headers = await plain.call("POST", "/api/auth/login", {"password": PASSWORD})
        cookie = headers["Set-Cookie"]
        assert "codex_lb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/" in cookie and "Secure" not in cookie
    async with Browser(server.url, headers={"X-Forwarded-Proto": "https"}) as tls:
        _, _, headers = await tls.call("POST", "/api/auth/login", {"password": PASSWORD})
        assert "Secure" in headers["Set-Cookie"]


async def test_changing_the_password_ends_the_other_sessions(server):
    await (await _set_password_locally(server.url)).session.close()
    async with Browser(server.url) as first, Browser(server.url) as second:
        for browser in (first, second):
            assert (await browser.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
        change = {"current_password": "not it at all", "new_password": "a brand new password"}
        code, body, _ = await first.call("POST", "/api/auth/password", change)
        assert code == 401 and body["error"]["code"] == "invalid_credentials"
        change["current_password"] = PASSWORD
        assert (await first.call("POST", "/api/auth/password", change))[0] == 204
        assert (await first.call("GET", "/api/settings"))[0] == 200
        assert (await second.call("GET", "/api/settings"))[0] == 401
        assert (await second.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 401
        assert (await second.call("POST", "/api/auth/login", {"password": "a brand new password"}))[0] == 200


async def test_sessions_are_listed_and_revoked_one_by_one_or_all(server):
    await (await _set_password_locally(server.url)).session.close()
    async with Browser(server.url) as first, Browser(server.url, "198.51.100.4") as second:
        for browser in (first, second):
            assert (await browser.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
        _, body, _ = await first.call("GET", "/api/auth/sessions")
        other = next(s for s in body["sessions"] if not s["current"])
        assert other["client_address"] == "198.51.100.4"
        assert (await first.call("DELETE", f"/api/auth/sessions/{other['id']}"))[0] == 204
        assert (await second.call("GET", "/api/settings"))[0] == 401
        assert (await first.call("DELETE", f"/api/auth/sessions/{other['id']}"))[0] == 404
        assert (await second.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
        assert (await first.call("POST", "/api/auth/logout-all"))[0] == 204
        for browser in (first, second):
            assert (await browser.call("GET", "/api/settings"))[0] == 401


async def test_state_changes_from_another_site_are_refused(server):
    await (await _set_password_locally(server.url)).session.close()
    async with Browser(server.url) as browser:
        assert (await browser.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
        change = {"upstream_stream_transport": "http"}
        code, body, _ = await browser.call("PUT", "/api/settings", change, {"Origin": "https://evil.example"})
        assert code == 403 and body["error"]["code"] == "cross_site_request"
        code, body, _ = await browser.call("PUT", "/api/settings", change, {"Sec-Fetch-Site": "cross-site"})
        assert code == 403 and body["error"]["code"] == "cross_site_request"
        async with browser.session.put(
            server.url + "/api/settings",
            data=b'{"upstream_stream_transport": "http"}',
            headers={**browser.headers, "Content-Type": "text/plain"},
        ) as response:
            assert response.status == 415
        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        code, body, _ = await browser.call("PUT", "/api/settings", change, own)
        assert code == 200 and body["upstream_stream_transport"] == "http"
        assert (await browser.call("PUT", "/api/settings", {"upstream_stream_transport": "auto"}))[0] == 200


async def test_a_revoked_session_stops_working_on_another_replica(tmp_path, database_url):
    settings = make_settings(tmp_path / "data", database_url, **TRUST_LOOPBACK_PROXY)
    async with serve_in_process(settings) as first, serve_in_process(settings) as second:
        await (await _set_password_locally(first.url)).session.close()
        async with Browser(first.url) as on_first:
            assert (await on_first.call("POST", "/api/auth/login", {"password": PASSWORD}))[0] == 200
            async with Browser(second.url) as on_second:
                on_second.session.cookie_jar.update_cookies({"codex_lb_session": on_first.cookie()})
                assert (await on_second.call("GET", "/api/settings"))[0] == 200  # cached there now
                assert (await on_first.call("POST", "/api/auth/logout"))[0] == 204
                await eventually(
                    lambda: on_second.call("GET", "/api/settings"),
                    lambda answer: answer[0] == 401,
                    what="revocation reaches a replica within 5 s",
                )
