"""`codex.keepalive` frames on a Codex CLI WebSocket while its turn waits for the upstream to answer.

The turn's first event is held back until the upstream produced content (so failover stays invisible);
meanwhile the socket would be silent for as long as the upstream thinks. The Codex CLI ignores
`codex.*` frames it does not know; SDK routes (/v1/responses) get none, only protocol pings.
"""

from __future__ import annotations

import asyncio

from sanic.exceptions import ServerError, WebsocketClosed
from websockets.exceptions import ConnectionClosed

from server.proxy.keepalive import alongside

FRAME = '{"type":"codex.keepalive"}'


def while_opening(ws, interval: float, enabled: bool):
    """Send a keepalive frame every `interval` seconds while the body of the `async with` runs."""
    return alongside(_beat(ws, interval) if enabled else None, "ws-keepalive")


async def _beat(ws, interval: float) -> None:
    try:
        while True:
            await asyncio.sleep(interval)
            await ws.send(FRAME)
    except (ConnectionClosed, WebsocketClosed, ServerError):
        return  # the client left; the turn notices on its own
