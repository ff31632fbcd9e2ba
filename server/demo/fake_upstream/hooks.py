"""Test hooks under `/__*`: stats, config, reset, request log, accounts, device approval.
Owns their JSON contract, which `control.FakeUpstreamControl` mirrors method for method."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from .admission import STATE
from .oauth import approve_device
from .quota import consume

EXPIRY_CODES = frozenset({"token_expired", "token_invalidated", "invalid_api_key"})


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict:
    raw = await request.read()
    if not raw:
        return {}
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


async def health(request: web.Request) -> web.Response:
    return _json({"ok": True})


async def stats(request: web.Request) -> web.Response:
    return _json(request.app[STATE].stats())


async def get_config(request: web.Request) -> web.Response:
    return _json(request.app[STATE].config_snapshot())


async def post_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        state.configure(await _body(request))
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json(state.config_snapshot())


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _json({"ok": True})


async def requests_log(request: web.Request) -> web.Response:
    q = request.query
    entries = request.app[STATE].log.last(int(q.get("limit", "100")), q.get("account"), q.get("path"))
    return _json(entries)


async def create_account(request: web.Request) -> web.Response:
    try:
        return _json(request.app[STATE].create_account(await _body(request)), 201)
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)


async def expire_tokens(request: web.Request) -> web.Response:
    body = await _body(request)
    code = body.get("code", "token_expired")
    if code not in EXPIRY_CODES:
        return _json({"error": f"code must be one of {sorted(EXPIRY_CODES)}"}, 400)
    account = request.app[STATE].accounts.get(request.match_info["account_id"])
    if account is None:
        return _json({"error": "unknown account"}, 404)
    account.expire_tokens(code)
    return _json({"ok": True})


async def consume_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    account = state.accounts.get(request.match_info["account_id"])
    if account is None:
        return _json({"error": "unknown account"}, 404)
    body = await _body(request)
    # `model`: spend the windows that meter it (a per-model bucket's for one of `other_models`).
    consume(account, state.book.of(account.account_id), int(body["tokens"]), time.time(), body.get("model"))
    return _json(
        {
            "primary_used_tokens": account.primary.used_tokens,
            "secondary_used_tokens": account.secondary.used_tokens,
        }
    )


async def device_approve(request: web.Request) -> web.Response:
    body = await _body(request)
    ok = approve_device(request, str(body.get("user_code", "")), body.get("account"), bool(body.get("deny")))
    return _json({"ok": ok}, 200 if ok else 404)


def add_hook_routes(app: web.Application) -> None:
    app.router.add_get("/__health", health)
    app.router.add_get("/__stats", stats)
    app.router.add_get("/__config", get_config)
    app.router.add_post("/__config", post_config)
    app.router.add_post("/__reset", reset)
    app.router.add_get("/__requests", requests_log)
    app.router.add_post("/__accounts", create_account)
    app.router.add_post("/__accounts/{account_id}/expire-tokens", expire_tokens)
    app.router.add_post("/__accounts/{account_id}/consume", consume_tokens)
    app.router.add_post("/__device/approve", device_approve)
