"""/api/auth/*: dashboard sign-in, sessions, password, TOTP and the viewer role (coord/AUTH_API.md)."""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json

from server.auth import audit, store
from server.auth import credentials as cred
from server.auth.clients import request_scheme
from server.auth.service import COOKIE, DashboardAuth
from server.auth.store import ADMIN, Credentials
from server.errors import BadRequest, ProxyError
from server.proxy.normalize import parse_json_object

bp = Blueprint("api_auth")


def _auth(request: Request) -> DashboardAuth:
    return request.app.ctx.dashboard_auth


def _text(payload: dict, name: str, required: bool = True) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"'{name}' must be a non-empty string.", param=name, code="invalid_request")
    return value


def _new_password(payload: dict, name: str) -> str:
    password = payload.get(name)
    problem = cred.password_problem(password)
    if problem:
        raise BadRequest(problem, param=name, code="weak_password")
    return password


def _signed_in(request: Request, response: HTTPResponse, token: str) -> HTTPResponse:
    response.add_cookie(
        COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request_scheme(request) == "https",
        max_age=int(_auth(request).settings.dashboard_session_max_s),
    )
    return response


def _signed_out(response: HTTPResponse) -> HTTPResponse:
    response.delete_cookie(COOKIE, path="/")
    return response


def _already_set() -> ProxyError:
    return ProxyError(
        "A dashboard password is already set: sign in instead.", status=409, code="password_set"
    )


def _operator_only() -> ProxyError:
    return ProxyError(
        "A password signs in without your reverse proxy, so with no fallback password yet only the operator "
        "sets one, on the host: `codex-lb dashboard set-password` (add --viewer for the viewer's).",
        status=403,
        code="operator_only",
    )


async def _prove_admin_password(request: Request, payload: dict, creds: Credentials) -> None:
    """The current admin password, under the sign-in throttle: a stolen session or proxy identity alone
    cannot replace a password (which signs in on its own, and outlives the identity)."""
    auth, current = _auth(request), _text(payload, "current_password")
    async with auth.attempt(request) as attempt:
        if not await auth.verify(creds.admin_hash, current):
            await audit.write(request, "auth.password_change_failed", reason="current_password")
            raise attempt.failed("current_password")
        attempt.succeeded()


@bp.get("/auth/status")
async def status(request: Request):
    return json(await _auth(request).status(request))


@bp.post("/auth/login")
async def login(request: Request):
    auth = _auth(request)
    payload = parse_json_object(request.body)
    password, code = _text(payload, "password"), _text(payload, "totp_code", required=False)
    if auth.mode == "disabled":
        raise BadRequest("Dashboard sign-in is disabled on this server.", code="sign_in_disabled")
    async with auth.attempt(request) as attempt:
        role = await auth.password_role(password)
        if role is None:
            await audit.write(request, "auth.sign_in_failed", reason="password")
            raise attempt.failed("password")
        second_factor = ""
        if role == ADMIN and (await auth.credentials()).totp_enabled:
            # A missing code is answered as a wrong one: "enter the code" would confirm the password.
            if not code or not await auth.check_second_factor(code):
                await audit.write(request, "auth.sign_in_failed", reason="code")
                raise attempt.failed("code")
            second_factor = "recovery_code" if cred.is_recovery_code(code) else "totp"
        attempt.succeeded()
    token, row = await auth.start_session(request, role)
    await audit.write(request, "auth.sign_in", row.id, role=role, second_factor=second_factor or None)
    return _signed_in(request, json({"role": role}), token)


@bp.post("/auth/bootstrap")
async def bootstrap(request: Request):
    auth = _auth(request)
    payload = parse_json_object(request.body)
    token = _text(payload, "token")
    if auth.mode != "standard" or (await auth.fresh_credentials()).password_set:
        raise _already_set()
    async with auth.attempt(request) as attempt:
        if not await auth.check_bootstrap_token(token):
            await audit.write(request, "auth.sign_in_failed", reason="bootstrap_token")
            raise attempt.failed("bootstrap_token")
        attempt.succeeded()
    password_hash = await auth.hash(_new_password(payload, "password"))
    if not await request.app.ctx.db.run(store.set_first_password, password_hash):
        raise _already_set()
    auth.changed()
    session_token, row = await auth.start_session(request, ADMIN)
    await audit.write(request, "auth.bootstrap", row.id)
    return _signed_in(request, json({"role": ADMIN}), session_token)


@bp.post("/auth/logout")
async def logout(request: Request):
    identity = request.ctx.identity
    if identity.session is not None:
        await request.app.ctx.db.run(store.delete_session, identity.session.id)
        _auth(request).changed()
        await audit.write(request, "auth.sign_out", identity.session.id)
    return _signed_out(empty(status=204))


@bp.post("/auth/logout-all")
async def logout_all(request: Request):
    ended = await request.app.ctx.db.run(store.delete_sessions)
    _auth(request).changed()
    await audit.write(request, "auth.sessions_revoked", "all", sessions_ended=ended)
    return _signed_out(empty(status=204))


@bp.post("/auth/password")
async def change_password(request: Request):
    auth, identity = _auth(request), request.ctx.identity
    payload = parse_json_object(request.body)
    new_password = _new_password(payload, "new_password")
    creds = await request.app.ctx.db.run(store.load_credentials)
    if creds.password_set:
        await _prove_admin_password(request, payload, creds)
    elif identity.via == "header":
        raise _operator_only()
    keep = identity.session.id if identity.session is not None else None
    ended = await request.app.ctx.db.run(store.set_admin_password, await auth.hash(new_password), keep)
    auth.changed()
    await audit.write(request, "auth.password_changed", sessions_ended=ended)
    response = empty(status=204)
    if identity.session is None and auth.mode == "standard":
        # Admitted as a local request until now: stay signed in under the new password.
        token, _ = await auth.start_session(request, ADMIN)
        _signed_in(request, response, token)
    return response


@bp.post("/auth/totp/setup")
async def totp_setup(request: Request):
    creds = await request.app.ctx.db.run(store.load_credentials)
    if creds.totp_enabled:
        raise ProxyError(
            "Two-factor sign-in is already on: turn it off first.", status=409, code="totp_enabled"
        )
    if not creds.password_set:
        raise ProxyError(
            "Set a password first: the code is asked after it.", status=409, code="password_required"
        )
    secret = cred.new_totp_secret()
    await request.app.ctx.db.run(store.set_totp_pending, request.app.ctx.secretbox.encrypt(secret))
    await audit.write(request, "auth.totp_setup_started")
    uri = cred.otpauth_uri(secret)
    return json({"secret": secret, "otpauth_uri": uri, "qr_svg": cred.qr_svg(uri)})


@bp.post("/auth/totp/enable")
async def totp_enable(request: Request):
    auth, box = _auth(request), request.app.ctx.secretbox
    code = _text(parse_json_object(request.body), "code")
    creds = await request.app.ctx.db.run(store.load_credentials)
    if not creds.totp_pending_secret:
        raise ProxyError("Start with POST /api/auth/totp/setup.", status=409, code="totp_not_set_up")
    step = cred.totp_step(box.decrypt(creds.totp_pending_secret), code, time.time())
    if step is None:
        raise BadRequest(
            "That code does not match: check the device's clock.", param="code", code="invalid_code"
        )
    codes = cred.new_recovery_codes()
    digests = [cred.recovery_digest(c) for c in codes]
    await request.app.ctx.db.run(store.enable_totp, creds.totp_pending_secret, step, digests)
    auth.changed()
    await audit.write(request, "auth.totp_enabled")
    return json({"recovery_codes": codes})


@bp.post("/auth/totp/disable")
async def totp_disable(request: Request):
    auth = _auth(request)
    code = _text(parse_json_object(request.body), "code")
    if not (await auth.credentials()).totp_enabled:
        return empty(status=204)
    async with auth.attempt(request) as attempt:
        if not await auth.check_second_factor(code):
            await audit.write(request, "auth.totp_disable_failed", reason="code")
            raise attempt.failed("code")
        attempt.succeeded()
    await request.app.ctx.db.run(store.disable_totp)
    auth.changed()
    await audit.write(request, "auth.totp_disabled")
    return empty(status=204)


@bp.put("/auth/viewer-password")
async def viewer_password(request: Request):
    auth = _auth(request)
    payload = parse_json_object(request.body)
    removing = payload.get("password") is None
    if not removing:
        password = _new_password(payload, "password")
        creds = await auth.fresh_credentials()
        if request.ctx.identity.via == "header":  # the viewer password too signs in without the proxy
            if not creds.password_set:
                raise _operator_only()
            await _prove_admin_password(request, payload, creds)
        if await auth.verify(creds.admin_hash, password):
            raise BadRequest("The viewer password must differ from the admin password.", code="weak_password")
    password_hash = "" if removing else await auth.hash(password)
    ended = await request.app.ctx.db.run(store.set_viewer_password, password_hash)
    auth.changed()
    action = "auth.viewer_password_removed" if removing else "auth.viewer_password_changed"
    await audit.write(request, action, sessions_ended=ended)
    return empty(status=204)


@bp.get("/auth/sessions")
async def list_sessions(request: Request):
    rows = await request.app.ctx.db.run(store.list_sessions, _auth(request).settings.dashboard_session_idle_s)
    current = request.ctx.identity.session
    current_id = current.id if current is not None else None
    return json({"sessions": [row.public(current_id) for row in rows]})


@bp.delete("/auth/sessions/<session_id:str>")
async def revoke_session(request: Request, session_id: str):
    if not await request.app.ctx.db.run(store.delete_session, session_id[:64]):
        raise ProxyError("No such session.", status=404, code="not_found")
    _auth(request).changed()
    await audit.write(request, "auth.session_revoked", session_id[:64])
    current = request.ctx.identity.session
    response = empty(status=204)
    return _signed_out(response) if current is not None and current.id == session_id else response
