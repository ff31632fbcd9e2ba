"""The fake auth server: PKCE code flow, rotating single-use refresh tokens, device code, auth.json."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream import CLIENT_ID, mint_auth_json
from server.demo.fake_upstream.client import bearer, post_responses, responses_body
from tests.support.polling import eventually

REDIRECT = "http://localhost:1455/auth/callback"


def claims_of(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def authorize(session, fake, challenge: str, **extra: str) -> aiohttp.ClientResponse:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        **extra,
    }
    async with session.get(
        fake.auth_url + "/oauth/authorize", params=params, allow_redirects=False
    ) as answer:
        await answer.read()
        return answer


async def exchange(
    session, fake, code: str, verifier: str, redirect_uri: str = REDIRECT, client_id: str = CLIENT_ID
) -> tuple[int, dict]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    async with session.post(fake.auth_url + "/oauth/token", data=form) as answer:
        return answer.status, await answer.json()


async def refresh(session, fake, refresh_token: str, as_json: bool = True) -> tuple[int, dict]:
    body = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "refresh_token": refresh_token,
        "scope": "openid profile email",
    }
    kwargs = {"json": body} if as_json else {"data": body}
    async with session.post(fake.auth_url + "/oauth/token", **kwargs) as answer:
        return answer.status, await answer.json()


async def test_authorization_code_flow_with_pkce_issues_working_jwts(fake_upstream, session):
    verifier, challenge = pkce()
    answer = await authorize(session, fake_upstream, challenge, login_hint="acc_browser")
    assert answer.status == 302
    location = urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    status, tokens = await exchange(session, fake_upstream, query["code"][0], verifier)
    assert status == 200 and set(tokens) >= {"access_token", "id_token", "refresh_token", "expires_in"}
    access, identity = claims_of(tokens["access_token"]), claims_of(tokens["id_token"])
    auth_claim = access["https://api.openai.com/auth"]
    assert auth_claim["chatgpt_account_id"] == "acc_browser" and auth_claim["chatgpt_plan_type"] == "plus"
    assert auth_claim["chatgpt_user_id"] == "user-acc_browser"
    assert access["https://api.openai.com/profile"]["email"] == identity["email"]
    assert identity["https://api.openai.com/auth"]["chatgpt_account_id"] == "acc_browser"
    assert access["exp"] > time.time() and identity["exp"] > time.time()
    stream = await post_responses(
        session,
        fake_upstream.base_url,
        responses_body(),
        bearer({"tokens": {**tokens, "account_id": "acc_browser"}}),
    )
    assert stream.status == 200
    assert (await fake_upstream.account_stats("acc_browser"))["logins"] == 1


@pytest.mark.parametrize("breakage", ["verifier", "redirect_uri", "client_id", "reuse"])
async def test_code_exchange_failures(fake_upstream, session, breakage):
    verifier, challenge = pkce()
    answer = await authorize(session, fake_upstream, challenge)
    code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
    if breakage == "reuse":
        assert (await exchange(session, fake_upstream, code, verifier))[0] == 200
    status, body = await exchange(
        session,
        fake_upstream,
        code,
        "wrong-verifier" if breakage == "verifier" else verifier,
        redirect_uri="http://localhost:9999/cb" if breakage == "redirect_uri" else REDIRECT,
        client_id="app_other" if breakage == "client_id" else CLIENT_ID,
    )
    assert status in (400, 401)
    assert body["error"] in ("invalid_grant", "invalid_client") and body["error_description"]


async def test_authorize_validates_the_request_and_can_be_told_to_fail(fake_upstream, session):
    _, challenge = pkce()
    assert (await authorize(session, fake_upstream, challenge, client_id="nope")).status == 400
    assert (await authorize(session, fake_upstream, "", code_challenge_method="S256")).status == 400
    await fake_upstream.configure(authorize_error="access_denied")
    denied = await authorize(session, fake_upstream, challenge)
    assert parse_qs(urlparse(denied.headers["Location"]).query) == {
        "error": ["access_denied"],
        "state": ["st4te"],
    }


async def test_next_login_chooses_who_logs_in(fake_upstream, session):
    await fake_upstream.configure(next_login=[{"account_id": "acc_q1", "plan_type": "pro"}, "acc_q2"])
    logged_in = []
    for _ in range(3):
        verifier, challenge = pkce()
        answer = await authorize(session, fake_upstream, challenge)
        code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
        _, tokens = await exchange(session, fake_upstream, code, verifier)
        logged_in.append(claims_of(tokens["id_token"])["https://api.openai.com/auth"])
    assert [a["chatgpt_account_id"] for a in logged_in] == ["acc_q1", "acc_q2", "acc_login_1"]
    assert logged_in[0]["chatgpt_plan_type"] == "pro"


async def test_refresh_tokens_rotate_and_reuse_is_detected(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_r", access_ttl_s=1200)
    first = auth["tokens"]["refresh_token"]
    status, rotated = await refresh(session, fake_upstream, first)
    assert status == 200 and rotated["refresh_token"] != first and rotated["expires_in"] == 10 * 24 * 3600
    status, reused = await refresh(session, fake_upstream, first)
    assert status == 401
    assert reused["error"]["code"] == "refresh_token_reused" and reused["error"]["message"]
    status, again = await refresh(session, fake_upstream, rotated["refresh_token"], as_json=False)  # form too
    assert status == 200
    stats = await fake_upstream.account_stats("acc_r")
    assert (stats["refreshes"], stats["refresh_attempts"], stats["refresh_reused"]) == (2, 3, 1)


async def test_access_token_lifetime_is_configurable(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_ttl", access_token_ttl_s=120)
    access = claims_of(auth["tokens"]["access_token"])
    assert access["exp"] - access["iat"] == 120
    _, rotated = await refresh(session, fake_upstream, auth["tokens"]["refresh_token"])
    assert rotated["expires_in"] == 120


@pytest.mark.parametrize(
    ("code", "status"),
    [("refresh_token_expired", 401), ("refresh_token_invalidated", 401), ("invalid_grant", 400)],
)
async def test_refresh_revocation_switches(fake_upstream, session, code, status):
    auth = await fake_upstream.create_account("acc_rev", refresh_error=code)
    got, body = await refresh(session, fake_upstream, auth["tokens"]["refresh_token"])
    assert got == status
    assert (body["error"] if code == "invalid_grant" else body["error"]["code"]) == code


async def test_concurrent_refreshes_of_one_token_let_exactly_one_win(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_race", token_latency_ms=50)
    token = auth["tokens"]["refresh_token"]
    results = await asyncio.gather(*[refresh(session, fake_upstream, token) for _ in range(5)])
    assert sorted(status for status, _ in results) == [200, 401, 401, 401, 401]
    stats = await fake_upstream.account_stats("acc_race")
    assert stats["refreshes"] == 1 and stats["refresh_attempts"] == 5


async def test_garbage_refresh_token_and_unknown_grant(fake_upstream, session):
    assert (await refresh(session, fake_upstream, "rt_garbage"))[0] == 400
    async with session.post(
        fake_upstream.auth_url + "/oauth/token", json={"grant_type": "password", "client_id": CLIENT_ID}
    ) as answer:
        assert answer.status == 400 and (await answer.json())["error"] == "unsupported_grant_type"


async def _device_start(session, fake) -> dict:
    async with session.post(
        fake.auth_url + "/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID}
    ) as answer:
        assert answer.status == 200
        return await answer.json()


async def _device_poll(session, fake, start: dict) -> tuple[int, dict]:
    body = {"device_auth_id": start["device_auth_id"], "user_code": start["user_code"]}
    async with session.post(fake.auth_url + "/api/accounts/deviceauth/token", json=body) as answer:
        return answer.status, await answer.json()


async def test_device_code_flow(fake_upstream, session):
    await fake_upstream.configure(device_interval_s=1)
    start = await _device_start(session, fake_upstream)
    assert start["device_auth_id"] and start["interval"] == "1"
    assert (await _device_poll(session, fake_upstream, start))[0] == 403  # pending: keep polling
    assert await fake_upstream.approve_device(start["user_code"], account="acc_device")
    status, grant = await _device_poll(session, fake_upstream, start)
    assert status == 200 and set(grant) == {"authorization_code", "code_verifier", "code_challenge"}
    status, tokens = await exchange(
        session,
        fake_upstream,
        grant["authorization_code"],
        grant["code_verifier"],
        redirect_uri=fake_upstream.auth_url + "/deviceauth/callback",
    )
    assert status == 200
    assert claims_of(tokens["id_token"])["https://api.openai.com/auth"]["chatgpt_account_id"] == "acc_device"


async def test_device_code_denial_unknown_codes_and_verification_page(fake_upstream, session):
    start = await _device_start(session, fake_upstream)
    assert await fake_upstream.approve_device(start["user_code"], deny=True)
    status, body = await _device_poll(session, fake_upstream, start)
    assert status == 400 and body["error"]["code"] == "access_denied"
    assert (await _device_poll(session, fake_upstream, {**start, "device_auth_id": "nope"}))[0] == 404
    assert not await fake_upstream.approve_device("ZZZZ-ZZZZ")
    async with session.get(fake_upstream.auth_url + "/codex/device") as page:
        assert page.status == 200 and "user_code" in await page.text()
    second = await _device_start(session, fake_upstream)
    async with session.post(
        fake_upstream.auth_url + "/codex/device",
        data={"user_code": second["user_code"].lower(), "account": "acc_page", "decision": "approve"},
    ) as page:
        assert page.status == 200
    assert (await _device_poll(session, fake_upstream, second))[0] == 200


async def test_device_code_expiry_is_configurable(fake_upstream, session):
    await fake_upstream.configure(device_ttl_s=0.3)
    start = await _device_start(session, fake_upstream)
    assert start["expires_in"] == 0.3
    answer = await eventually(
        lambda: _device_poll(session, fake_upstream, start), lambda answer: answer[0] != 403
    )
    assert answer[0] == 400 and answer[1]["error"]["code"] == "expired_token"


async def test_mint_auth_json_is_accepted_offline_and_its_refresh_token_is_single_use(fake_upstream, session):
    auth = mint_auth_json("acc_offline", email="dev@example.com", plan_type="team")
    assert auth["OPENAI_API_KEY"] is None and auth["tokens"]["account_id"] == "acc_offline"
    assert datetime.fromisoformat(auth["last_refresh"].replace("Z", "+00:00"))
    assert claims_of(auth["tokens"]["id_token"])["email"] == "dev@example.com"
    result = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    assert result.status == 200 and result.text == "Hello from fake account acc_offline."
    assert (await fake_upstream.account_stats("acc_offline"))["plan_type"] == "team"
    assert (await refresh(session, fake_upstream, auth["tokens"]["refresh_token"]))[0] == 200
    assert (await refresh(session, fake_upstream, auth["tokens"]["refresh_token"]))[0] == 401
