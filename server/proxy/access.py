"""The access log: one line per proxied request (or WebSocket turn), the same fields on every route,
and one for each request refused at the door (a missing or wrong API key, a non-local client, a body
that cannot be read)."""

from __future__ import annotations

import logging
import time

import orjson
from sanic import Request, Sanic

from server import metrics
from server.usage.records import FinishedRequest, new_request_id

log = logging.getLogger(__name__)
PROXY_PREFIXES = ("/v1/", "/backend-api/codex/", "/backend-api/transcribe")
_REASON_CHARS = 200


def served(finished: FinishedRequest) -> None:
    """The line of a request that got as far as its route: served, failed, or refused by its key."""
    failed = finished.status != 200
    log.info(
        "access request_id=%s route=%s transport=%s upstream=%s account=%s model=%s status=%d tokens=%s "
        "latency_ms=%.1f attempts=%d%s",
        finished.request_id,
        finished.route,
        finished.transport,
        finished.upstream_transport or "-",
        finished.account_id if finished.account_id is not None else "-",
        finished.model or "-",
        finished.status,
        finished.usage.total_tokens if finished.usage is not None else "-",
        finished.latency_ms,
        finished.attempts,
        _outcome(finished.error_code, finished.reason) if failed else "",
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
        transport = "websocket" if upgrade else "http"
        metrics.request_refused(request.path, response.status, transport)
        served(
            FinishedRequest(
                request_id=request_id,
                started_at=time.time(),
                route=request.path,
                transport=transport,
                status=response.status,
                error_code=code or "refused",
                reason=message,
                attempts=0,
            )
        )


def _error_of(body: bytes | None) -> tuple[str, str]:
    try:
        error = orjson.loads(body or b"{}").get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")
