"""Request intake, between routing and the handler: who the caller is, decided from the headers before
any body byte is read; then the body, received under a deadline and a per-worker budget of bytes.

Sanic would otherwise read a whole body (bounded only by the hour-long response timeout) before any
check ran, so keyless remote clients could pin memory with bodies they never finish. Owns BodyBudget.
"""

from __future__ import annotations

import asyncio
import logging

from sanic import Request, Sanic

from server.auth import crosssite
from server.auth.gate import authorize_api
from server.auth.guard import authorize_proxy
from server.errors import PROXY_PREFIXES, NotFound, ProxyError
from server.freshness import learn_presented_key

log = logging.getLogger(__name__)

# Route ids are database integers: anything past a signed 64-bit value names nothing (and SQLite and
# PostgreSQL refuse to bind it).
MAX_ROUTE_ID = 2**63 - 1
BUSY_RETRY_AFTER_S = 1


class BodyBudget:
    """Bytes of request bodies this worker is receiving right now, against a ceiling."""

    __slots__ = ("limit", "in_flight")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def take(self, amount: int) -> bool:
        # One body at a time always fits, whatever its size (the size limit is Sanic's to enforce).
        if self.in_flight and self.in_flight + amount > self.limit:
            return False
        self.in_flight += amount
        return True

    def give(self, amount: int) -> None:
        self.in_flight -= amount


def install(app: Sanic) -> None:
    settings = app.ctx.settings
    app.ctx.body_budget = BodyBudget(settings.body_bytes_in_flight)

    @app.signal("http.routing.after")
    async def admit_request(request: Request, route, kwargs: dict, handler) -> None:
        stream = request.stream
        if stream is None or not stream.request_body or route.extra.ignore_body:
            _check_route_ids(request, kwargs)
            return
        if hasattr(handler, "is_stream"):
            return  # a streaming handler reads (and bounds) its own body
        try:
            _check_route_ids(request, kwargs)
            # The same rules as the middleware and handlers that run later, decided from the headers
            # alone: a refused caller never gets to send its body.
            crosssite.check_request(request)
            if request.path.startswith("/api/"):
                await authorize_api(request)
            elif request.path.startswith(PROXY_PREFIXES):
                await learn_presented_key(request)
                authorize_proxy(request)
            await receive_body(request, app.ctx.body_budget, settings.request_body_timeout_s)
        except ProxyError:
            _abandon_body(request)
            raise


def _check_route_ids(request: Request, kwargs: dict) -> None:
    for name, value in kwargs.items():
        if isinstance(value, int) and not -MAX_ROUTE_ID <= value <= MAX_ROUTE_ID:
            raise NotFound(f"No such {name.removesuffix('_id')}: the id {value} is out of range.")


async def receive_body(request: Request, budget: BodyBudget, timeout: float) -> None:
    """Read the whole body into request.body: 408 past `timeout`, 503 when the worker's budget of body
    bytes in flight is spent (a declared Content-Length is reserved up front, chunked bodies as they
    come), 413 past the size limit (Sanic's own check, as the bytes arrive)."""
    declared = _content_length(request)
    held = 0
    chunks: list[bytes] = []
    try:
        if declared:
            if not budget.take(declared):
                raise _busy(request, budget)
            held = declared
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.stream:
                    chunks.append(chunk)
                    if not declared:
                        if not budget.take(len(chunk)):
                            raise _busy(request, budget)
                        held += len(chunk)
        except TimeoutError:
            log.info(
                "request body timed out path=%s peer=%s received=%d",
                request.path,
                request.conn_info.client_ip if request.conn_info else "-",
                sum(map(len, chunks)),
            )
            raise ProxyError(
                f"The request body did not arrive within {timeout:g} s.",
                status=408,
                code="request_timeout",
            ) from None
    finally:
        budget.give(held)
    request.body = b"".join(chunks)


def _content_length(request: Request) -> int:
    try:
        return max(0, int(request.headers.get("content-length", "0")))
    except ValueError:
        return 0  # Sanic has refused a bad one already; chunked bodies have none


def _busy(request: Request, budget: BodyBudget) -> ProxyError:
    log.warning("request body refused: worker busy path=%s in_flight=%d", request.path, budget.in_flight)
    return ProxyError(
        "The server is receiving too many request bodies at once; retry in a moment.",
        status=503,
        type="server_error",
        code="server_busy",
        headers={"retry-after": str(BUSY_RETRY_AFTER_S)},
    )


def _abandon_body(request: Request) -> None:
    """Answer without reading the rest of the body, then close the connection: Sanic would otherwise
    drain it after the error response, which is what a slow client wants."""
    stream = request.stream
    if stream is None:
        return
    if hasattr(stream, "keep_alive"):
        stream.keep_alive = False
    stream.request_body = None
