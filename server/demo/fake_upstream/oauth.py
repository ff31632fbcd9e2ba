"""The fake auth.openai.com: `/oauth/authorize`, `/oauth/token`, device-code login and its pages.
Owns the wire shapes of token answers and OAuth errors; codes and single use live in grants."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import orjson
from aiohttp import web

from .admission import LOG_ENTRY, STATE
from .grants import pkce_challenge
from .tokens import CLIENT_ID, mint_token_set, read_refresh_token

REFRESH_ERROR_MESSAGES = {
    "refresh_token_reused": "Your refresh token has already been used to generate a new access token. "
    "Please try signing in again.",
    "refresh_token_expired": "Your refresh token has expired. Please try signing in again.",
    "refresh_token_invalidated": "Your refresh token has been invalidated. Please try signing in again.",
}


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    """RFC 6749 shape: `{"error": "invalid_grant", "error_description": ...}`."""
    return web.json_response({"error": error, "error_description": description}, status=status)


def _refresh_error(code: str) -> web.Response:
    if code == "unavailable":
        return web.Response(status=503, text="upstream connect error or disconnect/reset before headers")
    if code not in REFRESH_ERROR_MESSAGES:
        return _oauth_error(400 if code == "invalid_grant" else 401, code, f"Refresh failed: {code}.")
    body = {
        "error": {
            "message": REFRESH_ERROR_MESSAGES[code],
            "type": "invalid_request_error",
            "param": None,
            "code": code,
        }
    }
    return web.json_response(body, status=401)


def _log(request: web.Request, body: object = None) -> dict:
    entry = request.app[STATE].log.record(
        request.method, request.path, request.headers, query=request.query, body=body, peer=request.remote
    )
    request[LOG_ENTRY] = entry
    return entry


async def authorize(request: web.Request) -> web.Response:
    state = request.app[STATE]
    q = request.query
    _log(request)
    problems = [
        q.get("response_type") != "code" and "response_type must be 'code'",
        q.get("client_id") != CLIENT_ID and "unknown client_id",
        not q.get("redirect_uri") and "redirect_uri is required",
        not q.get("code_challenge") and "code_challenge is required",
        q.get("code_challenge_method", "S256") != "S256" and "code_challenge_method must be S256",
    ]
    problem = next((p for p in problems if p), None)
    if problem:
        return web.Response(
            status=400,
            text=f"<html><body>Invalid authorization request: {problem}</body></html>",
            content_type="text/html",
        )
    redirect = q["redirect_uri"]
    separator = "&" if "?" in redirect else "?"
    if state.grants.authorize_error:
        params = {"error": state.grants.authorize_error, "state": q.get("state", "")}
        raise web.HTTPFound(redirect + separator + urlencode(params))
    identity = state.identity_for_login(q.get("login_hint"))
    state.accounts.register(identity).stats.logins += 1
    code = state.grants.issue_code(identity, q["client_id"], redirect, q["code_challenge"])
    raise web.HTTPFound(redirect + separator + urlencode({"code": code, "state": q.get("state", "")}))


async def _form_or_json(request: web.Request) -> dict:
    if request.content_type == "application/json":
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}
    return dict(await request.post())


async def token(request: web.Request) -> web.Response:
    body = await _form_or_json(request)
    _log(request, {k: v for k, v in body.items()})
    grant = body.get("grant_type")
    if body.get("client_id") != CLIENT_ID:
        return _oauth_error(401, "invalid_client", "Unknown client_id.")
    if grant == "authorization_code":
        return _exchange_code(request, body)
    if grant == "refresh_token":
        return await _refresh(request, body)
    return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant!r}.")


def _exchange_code(request: web.Request, body: dict) -> web.Response:
    state = request.app[STATE]
    outcome = state.grants.redeem_code(
        str(body.get("code", "")),
        str(body.get("client_id")),
        str(body.get("redirect_uri", "")),
        str(body.get("code_verifier", "")),
    )
    if isinstance(outcome, str):
        return _oauth_error(400, "invalid_grant", outcome)
    account = state.accounts.register(outcome)
    tokens = mint_token_set(outcome, state.book.of(account.account_id).access_token_ttl_s)
    return web.json_response(tokens.as_oauth_answer())


async def _refresh(request: web.Request, body: dict) -> web.Response:
    state = request.app[STATE]
    presented = str(body.get("refresh_token") or "")
    identity = read_refresh_token(presented)
    if identity is None:
        return _oauth_error(400, "invalid_grant", "Invalid refresh token.")
    account = state.accounts.register(identity)
    request[LOG_ENTRY]["account"] = account.account_id
    behaviour = state.book.of(account.account_id)
    account.stats.refresh_attempts += 1
    if behaviour.refresh_error:
        return _refresh_error(behaviour.refresh_error)
    # Spend before any latency: a concurrent second use must see `refresh_token_reused`.
    if not state.grants.spend_refresh_token(presented):
        account.stats.refresh_reused += 1
        return _refresh_error("refresh_token_reused")
    if behaviour.token_latency_ms:
        await asyncio.sleep(behaviour.token_latency_ms / 1000)
    account.stats.refreshes += 1
    return web.json_response(mint_token_set(identity, behaviour.access_token_ttl_s).as_oauth_answer())


async def device_usercode(request: web.Request) -> web.Response:
    body = await _form_or_json(request)
    _log(request, body)
    if body.get("client_id") != CLIENT_ID:
        return web.json_response(
            {"error": {"code": "invalid_client", "message": "Unknown client_id."}}, status=400
        )
    grants = request.app[STATE].grants
    login = grants.start_device_login()
    expires = datetime.fromtimestamp(login.expires_at, UTC).isoformat().replace("+00:00", "Z")
    return web.json_response(
        {
            "device_auth_id": login.device_auth_id,
            "user_code": login.user_code,
            "usercode": login.user_code,
            "interval": str(grants.device_interval_s),
            "expires_at": expires,
            "expires_in": grants.device_ttl_s,
        }
    )


async def device_token(request: web.Request) -> web.Response:
    body = await _form_or_json(request)
    _log(request, body)
    login = request.app[STATE].grants.devices.get(str(body.get("user_code", "")).upper())
    if login is None or login.device_auth_id != body.get("device_auth_id"):
        return web.json_response(
            {"error": {"code": "deviceauth_not_found", "message": "Unknown device code."}}, status=404
        )
    if login.expires_at < time.time():
        return web.json_response(
            {"error": {"code": "expired_token", "message": "The device code expired."}}, status=400
        )
    if login.state == "pending":
        return web.json_response(
            {
                "error": {
                    "code": "authorization_pending",
                    "message": "Waiting for the user to enter the code.",
                },
                "status": "pending",
            },
            status=403,
        )
    if login.state == "denied":
        return web.json_response(
            {"error": {"code": "access_denied", "message": "The user denied access."}}, status=400
        )
    return web.json_response(
        {
            "authorization_code": login.authorization_code,
            "code_verifier": login.code_verifier,
            "code_challenge": pkce_challenge(login.code_verifier or ""),
        }
    )


def approve_device(request: web.Request, user_code: str, account: str | None, deny: bool = False) -> bool:
    state = request.app[STATE]
    identity = None if deny else state.identity_for_login(account)
    login = state.grants.decide_device_login(user_code, identity)
    if login is None:
        return False
    if identity is not None:
        state.accounts.register(identity).stats.logins += 1
    return True


_DEVICE_PAGE = """<!doctype html><html><head><title>Fake device login</title></head><body>
<h1>Enter the code shown in your terminal</h1>{notice}
<form method="post" action="/codex/device">
<label>Code <input name="user_code" autocomplete="off"></label>
<label>Account <input name="account" placeholder="account id or email (optional)"></label>
<button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button>
</form></body></html>"""


async def device_page(request: web.Request) -> web.Response:
    return web.Response(text=_DEVICE_PAGE.format(notice=""), content_type="text/html")


async def device_page_submit(request: web.Request) -> web.Response:
    form = await request.post()
    ok = approve_device(
        request,
        str(form.get("user_code", "")),
        str(form.get("account") or "") or None,
        deny=form.get("decision") == "deny",
    )
    notice = "<p>Done. You may close this page.</p>" if ok else "<p>Unknown code.</p>"
    return web.Response(
        text=_DEVICE_PAGE.format(notice=notice), content_type="text/html", status=200 if ok else 404
    )


async def device_callback(request: web.Request) -> web.Response:
    return web.Response(
        text="<html><body>Signed in. You may close this page.</body></html>", content_type="text/html"
    )
