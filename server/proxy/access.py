"""The access log: one line per proxied request (or WebSocket turn), the same fields on every route,
and one for each request refused at the door (a missing or wrong API key, a non-local client, a body
that cannot be read)."""

from __future__ import annotations

import logging

import orjson
from sanic import Request, Sanic

from server import metrics
from server.usage.records import new_request_id

log = logging.getLogger(__name__)
PROXY_PREFIXES = ("/v1/", "/backend-api/codex/", "/backend-api/transcribe")
_REASON_CHARS = 200


def served(
    *,
    request_id: str,
    route: str,
    transport: str,
    upstream: str,
    account_id: int | None,
    model: str,
    status: int,
    tokens: int | None,
    latency_ms: float,
    attempts: int,
    error: str = "",
    reason: str = "",
) -> None:
    """The line of a request that got as far as its route: served, failed, or refused by its key."""
    log.info(
        "access request_id=%s route=%s transport=%s upstream=%s account=%s model=%s status=%d tokens=%s "
        "latency_ms=%.1f attempts=%d%s",
        request_id,
        route,
        transport,
        upstream or "-",
        account_id if account_id is not None else "-",
        model or "-",
        status,
        tokens if tokens is not None else "-",
        latency_ms,
        attempts,
        _outcome(error, reason),
    )


def _outcome(error: str, reason: str) -> str:
    text = f" error={error}" if error else ""
    if reason:
        text += " reason=" + orjson.dumps(reason[:_REASON_CHARS]).decode()
    return text


def install(app: Sanic) -> None:
    """Requests refused before their route settles them (no key or a wrong one, a body that cannot be
    read): log them from the response. A settled request's answer carries its x-request-id already."""

    @app.on_response
    async def log_refused_at_the_door(request: Request, response) -> None:
        if (
            response is None
            or response.status < 400
            or not request.path.startswith(PROXY_PREFIXES)
            or "x-request-id" in response.headers
        ):
            return
        code, message = _error_of(response.body)
        upgrade = request.headers.get("upgrade", "").lower() == "websocket"
        if upgrade and not code:
            return  # a WebSocket that was served: Sanic hands its ended socket here as a bare 500
        request_id = new_request_id()
        response.headers["x-request-id"] = request_id  # the client can quote it
        metrics.request_refused(request.path, response.status, "websocket" if upgrade else "http")
        served(
            request_id=request_id,
            route=request.path,
            transport="websocket" if upgrade else "http",
            upstream="",
            account_id=None,
            model="",
            status=response.status,
            tokens=None,
            latency_ms=0.0,
            attempts=0,
            error=code or "refused",
            reason=message,
        )


def _error_of(body: bytes | None) -> tuple[str, str]:
    try:
        error = orjson.loads(body or b"{}").get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")
