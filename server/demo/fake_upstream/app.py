"""The fake upstream's aiohttp application: ChatGPT backend, OAuth server and test hooks on one port.
Owns route wiring, error rendering and the quota/turn-state headers stamped on every backend answer."""

from __future__ import annotations

import ipaddress
import secrets
import time

import orjson
from aiohttp import web

from . import backend_routes, hooks, oauth, responses, websocket
from .admission import ACCOUNT, BEHAVIOUR, LOG_ENTRY, STATE
from .errors import Rejection
from .quota import quota_of, rate_limit_headers
from .state import FakeState

BACKEND_PREFIX = "/backend-api/"
MAX_BODY_BYTES = 64 * 1024 * 1024


# Per-account status counts cover model turns only (WebSocket turns are counted frame by frame).
_TURN_PATHS = frozenset({"/backend-api/codex/responses", "/backend-api/codex/responses/compact"})


@web.middleware
async def render_rejections(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Rejection as rejection:
        if rejection.account is not None and ACCOUNT not in request:
            request[ACCOUNT], request[BEHAVIOUR] = rejection.account, rejection.behaviour
        body = orjson.dumps(rejection.body) if isinstance(rejection.body, dict) else rejection.body.encode()
        response = web.Response(status=rejection.status, body=body, content_type=rejection.content_type)
    account = request.get(ACCOUNT)
    if account is not None and request.method == "POST" and request.path in _TURN_PATHS:
        account.stats.statuses[response.status] += 1
    entry = request.get(LOG_ENTRY)
    if entry is not None:
        entry["status"] = response.status
    return response


async def stamp_backend_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Quota headers and `x-codex-turn-state` on every backend answer, errors and handshakes included."""
    if not request.path.startswith(BACKEND_PREFIX):
        return
    headers = response.headers
    headers["x-codex-turn-state"] = request.headers.get("x-codex-turn-state") or "ts_" + secrets.token_hex(16)
    account = request.get(ACCOUNT)
    if account is not None:
        headers.update(rate_limit_headers(quota_of(account, request[BEHAVIOUR], time.time())))


def create_app(state: FakeState | None = None) -> web.Application:
    app = web.Application(middlewares=[render_rejections], client_max_size=MAX_BODY_BYTES)
    app[STATE] = state or FakeState()
    app.on_response_prepare.append(stamp_backend_headers)
    r = app.router
    r.add_post("/backend-api/codex/responses", responses.create_response)
    r.add_get("/backend-api/codex/responses", websocket.responses_websocket)
    r.add_post("/backend-api/codex/responses/compact", responses.compact)
    r.add_get("/backend-api/codex/models", backend_routes.list_models)
    r.add_get("/backend-api/wham/usage", backend_routes.wham_usage)
    r.add_post("/backend-api/transcribe", backend_routes.transcribe)
    r.add_get("/ip", backend_routes.exit_address)
    r.add_get("/oauth/authorize", oauth.authorize)
    r.add_post("/oauth/token", oauth.token)
    r.add_post("/api/accounts/deviceauth/usercode", oauth.device_usercode)
    r.add_post("/api/accounts/deviceauth/token", oauth.device_token)
    r.add_get("/codex/device", oauth.device_page)
    r.add_post("/codex/device", oauth.device_page_submit)
    r.add_get("/deviceauth/callback", oauth.device_callback)
    hooks.add_hook_routes(app)
    return app


def check_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the fake upstream binds to loopback only, not {host!r}")


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 = a free port); answers the runner and the bound port."""
    check_loopback(host)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound
