"""Adding accounts by signing in: browser PKCE through the real callback port, a pasted callback URL,
device code (approved, denied, expired), and re-authentication of an existing account."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from server.upstream.oauth import BROWSER_REDIRECT_URI, CODEX_CLIENT_ID
from tests.support.polling import eventually
from tests.support.proxy import proxy_settings, serve_proxy


async def api(proxy, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, proxy.url + path, json=body) as response:
            return response.status, await response.json()


async def follow_authorize(authorize_url: str) -> str:
    """What the browser does: the fake signs in at once and redirects to the callback URL."""
    async with aiohttp.ClientSession() as session:
        async with session.get(authorize_url, allow_redirects=False) as answer:
            assert answer.status == 302, await answer.text()
            return answer.headers["Location"]


async def flow_status(proxy, kind: str, flow_id: str) -> dict:
    status, body = await api(proxy, "GET", f"/api/accounts/{kind}/{flow_id}")
    assert status == 200, body
    return body


async def finished(proxy, kind: str, flow_id: str) -> dict:
    async def done():
        body = await flow_status(proxy, kind, flow_id)
        return body if body["status"] not in ("pending", "exchanging") else None

    return await eventually(done, timeout=10)


async def callback_on_listener(proxy, callback_url: str) -> tuple[int, str]:
    """Deliver the browser's redirect to the listener, on the test's free port instead of 1455."""
    parts = urlsplit(callback_url)
    local = f"http://127.0.0.1:{proxy.settings.oauth_callback_port}{parts.path}?{parts.query}"

    async def attempt():
        try:
            async with aiohttp.ClientSession() as session, session.get(local) as answer:
                return answer.status, await answer.text()
        except aiohttp.ClientConnectionError:
            return None  # the listener is still binding

    return await eventually(attempt, timeout=10)


async def test_browser_sign_in_through_the_callback_port(proxy):
    await proxy.fake.configure(next_login={"account_id": "acc_browser", "email": "b@example.com"})
    status, started = await api(proxy, "POST", "/api/accounts/oauth/start")
    assert status == 201 and started["status"] == "pending" and started["kind"] == "browser"
    url = urlsplit(started["authorize_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == proxy.fake.auth_url + "/oauth/authorize"
    assert "scope=openid%20profile%20email%20offline_access" in url.query
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == CODEX_CLIENT_ID and query["redirect_uri"] == BROWSER_REDIRECT_URI
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["response_type"] == "code" and query["id_token_add_organizations"] == "true"
    assert query["codex_cli_simplified_flow"] == "true" and query["state"]

    callback = await follow_authorize(started["authorize_url"])
    assert callback.startswith(BROWSER_REDIRECT_URI + "?")
    status, page = await callback_on_listener(proxy, callback)
    assert status == 200 and "Signed in" in page and "b@example.com" in page

    done = await flow_status(proxy, "oauth", started["flow_id"])
    assert done["status"] == "completed" and done["account_id"]
    pool = await proxy.accounts()
    assert [(a["chatgpt_account_id"], a["email"], a["status"]) for a in pool] == [
        ("acc_browser", "b@example.com", "active")
    ]
    exchange = (await proxy.fake.requests(path="/oauth/token"))[-1]
    assert exchange["body"]["grant_type"] == "authorization_code"
    assert exchange["body"]["redirect_uri"] == BROWSER_REDIRECT_URI
    assert exchange["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
    # The account serves requests with the tokens from the sign-in.
    answer = await proxy.post("/backend-api/codex/responses", _codex_body())
    assert answer.status == 200


async def test_the_callback_listener_closes_when_no_sign_in_is_pending(proxy):
    status, started = await api(proxy, "POST", "/api/accounts/oauth/start")
    callback = await follow_authorize(started["authorize_url"])
    await callback_on_listener(proxy, callback)

    async def closed():
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.settings.oauth_callback_port)
        except OSError:
            return True
        writer.close()
        return False

    await eventually(closed, timeout=5)


async def test_pasted_callback_url_completes_the_sign_in_once(proxy):
    await proxy.fake.configure(next_login="acc_pasted")
    _, started = await api(proxy, "POST", "/api/accounts/oauth/start")
    callback = await follow_authorize(started["authorize_url"])
    status, body = await api(proxy, "POST", "/api/accounts/oauth/complete", {"callback_url": callback})
    assert status == 200 and body["status"] == "completed", body
    assert [a["chatgpt_account_id"] for a in await proxy.accounts()] == ["acc_pasted"]
    # The code is single-use and the flow is over: a second paste is refused, nothing changes.
    status, body = await api(proxy, "POST", "/api/accounts/oauth/complete", {"callback_url": callback})
    assert status == 400 and "already completed" in body["error"]["message"]
    assert len(await proxy.fake.requests(path="/oauth/token")) == 1


@pytest.mark.parametrize(
    "pasted, message",
    [
        ("http://localhost:1455/auth/callback", "paste the whole address"),
        ("http://localhost:1455/auth/callback?code=x&state=forged", "unknown sign-in"),
        ("http://localhost:1455/auth/callback?code=x", "no state"),
    ],
)
async def test_bad_pasted_callback_urls_get_a_clear_error(proxy, pasted, message):
    status, body = await api(proxy, "POST", "/api/accounts/oauth/complete", {"callback_url": pasted})
    assert status == 400 and message in body["error"]["message"]
    assert await proxy.accounts() == []


async def test_a_refused_authorization_marks_the_flow_denied(proxy):
    await proxy.fake.configure(authorize_error="access_denied")
    _, started = await api(proxy, "POST", "/api/accounts/oauth/start")
    callback = await follow_authorize(started["authorize_url"])
    status, page = await callback_on_listener(proxy, callback)
    assert status == 400 and "access_denied" in page
    assert (await flow_status(proxy, "oauth", started["flow_id"]))["status"] == "denied"
    assert await proxy.accounts() == []


async def test_device_code_sign_in_approved(proxy):
    await proxy.fake.configure(device_interval_s=0)
    status, started = await api(proxy, "POST", "/api/accounts/device/start")
    assert status == 201 and started["user_code"] and started["status"] == "pending"
    assert started["verification_url"] == proxy.fake.auth_url + "/codex/device"
    assert (await flow_status(proxy, "device", started["flow_id"]))["status"] == "pending"
    assert await proxy.fake.approve_device(started["user_code"], account="acc_device")
    done = await finished(proxy, "device", started["flow_id"])
    assert done["status"] == "completed" and done["account_id"]
    assert [a["chatgpt_account_id"] for a in await proxy.accounts()] == ["acc_device"]
    exchange = (await proxy.fake.requests(path="/oauth/token"))[-1]["body"]
    assert exchange["redirect_uri"] == proxy.fake.auth_url + "/deviceauth/callback"


async def test_device_code_sign_in_denied(proxy):
    await proxy.fake.configure(device_interval_s=0)
    _, started = await api(proxy, "POST", "/api/accounts/device/start")
    assert await proxy.fake.approve_device(started["user_code"], deny=True)
    done = await finished(proxy, "device", started["flow_id"])
    assert done["status"] == "denied" and done["error"] == "access_denied"
    assert await proxy.accounts() == []


async def test_device_code_sign_in_expired(proxy):
    await proxy.fake.configure(device_interval_s=0, device_ttl_s=0.5)
    _, started = await api(proxy, "POST", "/api/accounts/device/start")
    done = await finished(proxy, "device", started["flow_id"])
    assert done["status"] == "expired"
    assert await proxy.accounts() == []


async def test_reauthentication_replaces_the_tokens_of_the_same_account(proxy):
    [account] = await proxy.add_accounts("acc_again", refresh_error="invalid_grant")
    status, _ = await api(proxy, "POST", f"/api/accounts/{account['id']}/refresh")
    assert status == 409
    assert (await proxy.accounts())[0]["status"] == "reauth_required"
    await proxy.fake.configure_account("acc_again", refresh_error=None)
    await proxy.fake.configure(next_login="acc_again")
    status, started = await api(proxy, "POST", f"/api/accounts/{account['id']}/reauth")
    assert status == 201 and started["reauth_account_id"] == account["id"]
    callback = await follow_authorize(started["authorize_url"])
    status, body = await api(proxy, "POST", "/api/accounts/oauth/complete", {"callback_url": callback})
    assert status == 200 and body["account_id"] == account["id"]
    [after] = await proxy.accounts()
    assert after["status"] == "active" and after["id"] == account["id"]
    status, _ = await api(proxy, "POST", f"/api/accounts/{account['id']}/refresh")
    assert status == 200  # the new refresh token works


async def test_reauthentication_as_another_account_is_refused(proxy):
    [account] = await proxy.add_accounts("acc_owner")
    await proxy.fake.configure(next_login="acc_intruder")
    _, started = await api(proxy, "POST", f"/api/accounts/{account['id']}/reauth")
    callback = await follow_authorize(started["authorize_url"])
    status, body = await api(proxy, "POST", "/api/accounts/oauth/complete", {"callback_url": callback})
    assert status == 400 and "different ChatGPT account" in body["error"]["message"]
    assert [a["chatgpt_account_id"] for a in await proxy.accounts()] == ["acc_owner"]
    assert (await flow_status(proxy, "oauth", started["flow_id"]))["status"] == "failed"


async def test_reauthentication_of_an_unknown_account_is_a_404(proxy):
    status, body = await api(proxy, "POST", "/api/accounts/999/reauth")
    assert status == 404


async def test_unknown_flow_is_a_404(proxy):
    status, _ = await api(proxy, "GET", "/api/accounts/oauth/flow_nope")
    assert status == 404


def _codex_body() -> dict:
    from tests.support.proxy import codex_body

    return codex_body()


def test_sign_in_and_polling_settings_are_validated(tmp_path):
    from server.config import ConfigError
    from tests.conftest import make_settings

    defaults = make_settings(tmp_path, in_container="0")
    assert (defaults.oauth_callback_host, defaults.oauth_callback_port) == ("127.0.0.1", 1455)
    assert defaults.usage_poll_interval_s == 60.0 and defaults.token_refresh_ahead_s == 3600.0
    assert make_settings(tmp_path, in_container="1").oauth_callback_host == "0.0.0.0"
    assert make_settings(tmp_path, usage_poll_interval_seconds="2.5").usage_poll_interval_s == 2.5
    for name, value in [
        ("oauth_callback_port", "70000"),
        ("usage_poll_interval_seconds", "soon"),
        ("token_refresh_ahead_seconds", "-1"),
    ]:
        with pytest.raises(ConfigError, match=f"CODEX_LB_{name.upper()}"):
            make_settings(tmp_path, **{name: value})


async def test_a_device_sign_in_survives_the_worker_that_started_it(tmp_path, database_url, fake_upstream):
    """A restart (rolling deploy, crash) while the user types the code: another worker polls on."""

    def settings():
        return proxy_settings(tmp_path, database_url, fake_upstream)

    await fake_upstream.configure(device_interval_s=0)
    async with serve_proxy(settings(), fake_upstream) as other:
        async with serve_proxy(settings(), fake_upstream) as first:
            _, started = await api(first, "POST", "/api/accounts/device/start")
            assert (await flow_status(first, "device", started["flow_id"]))["status"] == "pending"
        # The starting server is gone; the user approves only now.
        assert await fake_upstream.approve_device(started["user_code"], account="acc_survivor")
        done = await finished(other, "device", started["flow_id"])
        assert done["status"] == "completed"
        assert [a["chatgpt_account_id"] for a in await other.accounts()] == ["acc_survivor"]
