"""The one guard of the proxy routes (/v1/*, /backend-api/codex/*, /backend-api/transcribe).

API-key auth off (the default): only local requests pass, meaning a loopback socket peer, a local Host
header (no DNS rebinding) and no forwarding headers (a reverse proxy on this host relays someone
else). A local client that presents a codex-lb key anyway has it checked and its limits applied.
API-key auth on: every request needs `Authorization: Bearer sk-clb-…` of an enabled, unexpired key.
"""

from __future__ import annotations

import time

from sanic import Request

from server.auth.firewall import is_local_request
from server.errors import ProxyError
from server.keys.secret import KEY_PREFIX
from server.keys.store import KeyRecord


def authorize_proxy(request: Request) -> KeyRecord | None:
    """The caller's key (None for a local caller without one while key auth is off); raises ProxyError."""
    ctx = request.app.ctx.proxy
    bearer = _bearer(request)
    if ctx.runtime.current.api_key_auth_enabled:
        return _check_key(ctx.keys, bearer)
    if not is_local_request(request):
        raise ProxyError(
            "codex-lb only serves requests from this machine while API-key auth is off. To use it from "
            "other hosts, containers or VMs (or through a reverse proxy), enable API-key auth (PUT "
            '/api/settings {"api_key_auth_enabled": true}, or the dashboard\'s settings) and send a key '
            "as 'Authorization: Bearer sk-clb-…'.",
            status=401,
            type="invalid_request_error",
            code="local_only",
        )
    if bearer.startswith(KEY_PREFIX):
        return _check_key(ctx.keys, bearer)
    return None  # e.g. the Codex CLI's own ChatGPT token, or an SDK's placeholder key


def require_key(request: Request) -> KeyRecord:
    """The caller's key, whether key auth is on or off (for an endpoint about the key itself); raises
    ProxyError."""
    return _check_key(request.app.ctx.proxy.keys, _bearer(request))


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _check_key(keys, presented: str) -> KeyRecord:
    if not presented:
        raise _unauthorized(
            "This endpoint needs a codex-lb API key: send 'Authorization: Bearer sk-clb-…' "
            "(create one with `codex-lb keys create NAME`, POST /api/api-keys, or the dashboard)."
        )
    key = keys.lookup(presented)
    if key is None:
        raise _unauthorized("Incorrect API key provided.")
    if not key.enabled:
        raise _unauthorized("This API key is disabled.")
    if key.expires_at is not None and key.expires_at <= time.time():
        raise _unauthorized("This API key has expired.")
    return key


def _unauthorized(message: str) -> ProxyError:
    return ProxyError(message, status=401, type="invalid_request_error", code="invalid_api_key")
