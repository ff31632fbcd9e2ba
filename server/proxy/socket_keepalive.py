"""`codex.keepalive` frames on a Codex CLI WebSocket while its turn waits for the upstream to answer.

The turn's first event is held back until the upstream produced content (so failover stays invisible);
meanwhile the socket would be silent for as long as the upstream thinks. The Codex CLI ignores
`codex.*` frames it does not know; SDK routes (/v1/responses) get none, only protocol pings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sanic.exceptions import ServerError, WebsocketClosed
from websockets.exceptions import ConnectionClosed

FRAME = '{"type":"codex.keepalive"}'


@asynccontextmanager
async def while_opening(ws, interval: float, enabled: bool) -> AsyncIterator[None]:
    """Send a keepalive frame every `interval` seconds while the body of the `async with` runs."""
    if not enabled:
        yield
        return
    beat = asyncio.create_task(_beat(ws, interval), name="ws-keepalive")
    try:
        yield
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)


async def _beat(ws, interval: float) -> None:
    try:
        while True:
            await asyncio.sleep(interval)
            await ws.send(FRAME)
    except (ConnectionClosed, WebsocketClosed, ServerError):
        return  # the client left; the turn notices on its own
