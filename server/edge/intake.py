"""Request intake, between routing and the handler: who the caller is, decided from the headers before
any body byte is read; then the body, received under a deadline and a per-worker budget of bytes.

Sanic would otherwise read a whole body (bounded only by the hour-long response timeout) before any
check ran, so keyless remote clients could pin memory with bodies they never finish. Bodies no caller
has vouched for (sign-in, first-run bootstrap, any route outside /api and the proxy) are capped small,
kept to a short deadline and out of the budget, which is for the callers who passed a check. Owns
BodyBudget and BodyRules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sanic import Request, Sanic

from server.auth import crosssite
from server.auth.gate import authorize_api, is_public
from server.auth.guard import authorize_proxy
from server.errors import PROXY_PREFIXES, NotFound, ProxyError, RequestTooLarge
from server.sync.freshness import learn_presented_key

log = logging.getLogger(__name__)

# Route ids are database integers: anything past a signed 64-bit value names nothing (and SQLite and
# PostgreSQL refuse to bind it).
MAX_ROUTE_ID = 2**63 - 1
BUSY_RETRY_AFTER_S = 1
# The largest valid sign-in or bootstrap body (a 1,024-character password of astral characters, each
# escaped as two \uXXXX, and a bootstrap token) is about 14 KiB.
PUBLIC_BODY_MAX_BYTES = 16 * 1024
# A valid one fits in a packet or two: waiting the full body deadline would only serve a slowloris.
PUBLIC_BODY_TIMEOUT_S = 10.0


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


@dataclass(frozen=True, slots=True)
class BodyRules:
    """How bodies of one kind of caller are received: the budget they draw from (None: none, their size
    being capped), the deadline, and the size cap (None: Sanic's REQUEST_MAX_SIZE)."""

    budget: BodyBudget | None
    timeout_s: float
    max_bytes: int | None = None


def install(app: Sanic) -> None:
    settings = app.ctx.settings
    app.ctx.body_budget = BodyBudget(settings.body_bytes_in_flight)
    vouched = BodyRules(app.ctx.body_budget, settings.request_body_timeout_s)
    # No budget: capped, a parked public body costs about what a parked request head does, and a budget
    # of their own would let a few sockets lock everyone out of signing in.
    public = BodyRules(
        None, min(settings.request_body_timeout_s, PUBLIC_BODY_TIMEOUT_S), PUBLIC_BODY_MAX_BYTES
    )

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
            await receive_body(request, vouched if await _vouch_for_caller(request) else public)
        except ProxyError:
            _abandon_body(request)
            raise


async def _vouch_for_caller(request: Request) -> bool:
    """Apply the route's access rule (ProxyError for a refused caller); True when the caller passed one,
    False for a route anyone may call."""
    if request.path.startswith("/api/"):
        await authorize_api(request)
        return not is_public(request)
    if request.path.startswith(PROXY_PREFIXES):
        await learn_presented_key(request)
        # A keyless local caller while key auth is off passes: in that mode the loopback socket is the
        # credential, and local clients send the largest bodies.
        authorize_proxy(request)
        return True
    return False  # no rule names the caller of any other route (the dashboard's files, health)


def _check_route_ids(request: Request, kwargs: dict) -> None:
    for name, value in kwargs.items():
        if isinstance(value, int) and not -MAX_ROUTE_ID <= value <= MAX_ROUTE_ID:
            raise NotFound(f"No such {name.removesuffix('_id')}: the id {value} is out of range.")


async def receive_body(request: Request, rules: BodyRules) -> None:
    """Read the whole body into request.body: 408 past the deadline, 503 when the budget of body bytes in
    flight is spent (a declared Content-Length is reserved up front, chunked bodies as they come), 413
    past the size cap (from a declared length before any byte is read; a chunked body once it passes)
    or else past Sanic's size limit (its own check, as the bytes arrive)."""
    declared = _content_length(request)
    budget, timeout = rules.budget, rules.timeout_s
    if rules.max_bytes is not None and declared > rules.max_bytes:
        raise _too_large(request, rules.max_bytes)
    held = received = 0
    chunks: list[bytes] = []
    try:
        if declared and budget is not None:
            if not budget.take(declared):
                raise _busy(request, budget)
            held = declared
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.stream:
                    chunks.append(chunk)
                    received += len(chunk)
                    if rules.max_bytes is not None and received > rules.max_bytes:
                        raise _too_large(request, rules.max_bytes)
                    if not declared and budget is not None:
                        if not budget.take(len(chunk)):
                            raise _busy(request, budget)
                        held += len(chunk)
        except TimeoutError:
            log.info(
                "request body timed out path=%s peer=%s received=%d",
                request.path,
                request.conn_info.client_ip if request.conn_info else "-",
                received,
            )
            raise ProxyError(
                f"The request body did not arrive within {timeout:g} s.",
                status=408,
                code="request_timeout",
            ) from None
    finally:
        if budget is not None:
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


def _too_large(request: Request, max_bytes: int) -> RequestTooLarge:
    log.info("request body refused: over the cap path=%s max_bytes=%d", request.path, max_bytes)
    return RequestTooLarge(f"This route takes a request body of at most {max_bytes // 1024} KiB.")


def _abandon_body(request: Request) -> None:
    """Answer without reading the rest of the body, then close the connection: Sanic would otherwise
    drain it after the error response, which is what a slow client wants."""
    stream = request.stream
    if stream is None:
        return
    if hasattr(stream, "keep_alive"):
        stream.keep_alive = False
    stream.request_body = None
