"""Keeping a streaming client alive while the upstream opens: after a quiet interval the SSE head goes
out early, followed by an SSE comment line every interval until the stream (or its failure) is ready.

The head is normally held back until the first content event, so that failover stays invisible and an
upstream rejection can still be an HTTP error; a client whose SDK times out a silent connection (or a
user watching nothing happen) is worth more than that once the wait gets long. Comment lines (": …")
are ignored by every SSE parser, the Codex CLI's and the OpenAI SDKs' included. Owns the early head,
kept on request.ctx.sse_head.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager

from sanic import Request

from server.errors import ProxyError

log = logging.getLogger(__name__)
COMMENT = b": keepalive\n\n"


@asynccontextmanager
async def alongside(work: Coroutine | None, name: str) -> AsyncIterator[None]:
    """Run `work` as a task while the body of the `async with` runs, and cancel it when the body ends
    (None: nothing to run)."""
    if work is None:
        yield
        return
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def while_opening(request: Request, streaming: bool, interval: float):
    """Run the body of the `async with` (opening the upstream) with keepalives for a streaming client."""
    return alongside(_keep_alive(request, interval) if streaming else None, "sse-keepalive")


async def _keep_alive(request: Request, interval: float) -> None:
    await asyncio.sleep(interval)
    client = await request.respond(
        status=200, headers={"cache-control": "no-cache"}, content_type="text/event-stream"
    )
    request.ctx.sse_head = client
    log.info("upstream slow to open: SSE head sent early path=%s", request.path)
    while True:
        await client.send(COMMENT)
        await asyncio.sleep(interval)


def _early(request: Request):
    early = getattr(request.ctx, "sse_head", None)
    if early is None:
        # The keeper may have been cancelled inside request.respond(), after Sanic took the response.
        early = getattr(request.stream, "response", None) if request.stream is not None else None
    return early


def head_sent(request: Request) -> bool:
    return _early(request) is not None


async def respond(request: Request, headers: dict[str, str]):
    """The SSE response to write to: the early one if it went out, else a new one with `headers`."""
    early = _early(request)
    if early is not None:
        return early
    return await request.respond(status=200, headers=headers, content_type="text/event-stream")


async def fail(request: Request, exc: ProxyError, event: bytes) -> None:
    """After an early head the error can no longer be an HTTP status: it ends the stream as `event`."""
    log.info("stream failed after early head path=%s status=%d code=%s", request.path, exc.status, exc.code)
    client = _early(request)
    await client.send(event)
    await client.eof()


def reporter(
    request: Request, event: Callable[[ProxyError], bytes]
) -> Callable[[ProxyError], Awaitable[bool]]:
    """A Settlement's `report` for SSE routes: once the head has gone out early, an error ends the stream
    as `event(exc)` (True: handled); before that it stays an HTTP error."""

    async def report(exc: ProxyError) -> bool:
        if not head_sent(request):
            return False
        await fail(request, exc, event(exc))
        return True

    return report
