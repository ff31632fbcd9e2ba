"""The one way every proxied request (and WebSocket turn) goes, whatever its route: settled whatever
happens, its model checked against the catalog, admitted against its API key, its upstream opened while
the client is kept waiting, then delivered. A route says only what differs, as its `Steps`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from server.keys.admission import admit, check_model
from server.keys.store import KeyRecord
from server.proxy.settlement import Settlement
from server.proxy.trace import JsonAnswer, OpenedStream

Opened = TypeVar("Opened")  # an OpenedStream, a JsonAnswer (None: a prewarm with no socket)
Answer = TypeVar("Answer", covariant=True)  # what the route answers


class Steps(Protocol[Opened, Answer]):
    """One route's part in each step, for one request."""

    # Whether the request names a model of the catalog (transcription's is not one: see there).
    checks_model: bool

    def prepare(self, done: Settlement) -> int | None:
        """Read what admission needs: the request's size for its token estimate, or None for one that
        generates nothing (a prewarm: only the key's model rules apply)."""
        ...

    def keepalive(self) -> AbstractAsyncContextManager[object]:
        """What keeps the client company while the upstream opens."""
        ...

    async def open(self, done: Settlement, model_plans: frozenset[str] | None) -> Opened: ...

    async def deliver(self, done: Settlement, opened: Opened) -> Answer: ...


async def serve(done: Settlement, key: KeyRecord | None, steps: Steps[Opened, Answer]) -> Answer | None:
    """The request from its parsed form to its settled end. None when its error was told to the client
    by the route's own channel (`done.report`: after an early SSE head, on a WebSocket)."""
    ctx = done.ctx
    async with done:
        size = steps.prepare(done)
        # An unknown model is a 404 before any account is used.
        model_plans = ctx.models.current.require(done.model) if steps.checks_model else None
        if size is not None:
            done.admission = await admit(ctx, key, done.request_id, done.model, done.reasoning_effort, size)
        elif key is not None:
            check_model(key, done.model, done.reasoning_effort)
        async with steps.keepalive():
            opened = await steps.open(done, model_plans)
        if isinstance(opened, OpenedStream):
            done.opened = opened  # the Settlement releases it, however delivery ends
        elif isinstance(opened, JsonAnswer):
            done.status, done.error_code = opened.status, ""
        return await steps.deliver(done, opened)
    return None
