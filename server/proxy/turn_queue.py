"""The turns a client WebSocket has queued behind the running one, bounded in count and in bytes: per
socket (CODEX_LB_WEBSOCKET_QUEUED_BYTES) and across every socket of the worker
(CODEX_LB_WEBSOCKET_QUEUED_BYTES_PER_WORKER), counted as the frames' received size.

Eight queued turns of up to 16 MiB each let one socket hold 128 MiB and more; a byte bound holds for
any mix of frame sizes. Owns TurnQueue and the worker's QueuedBytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sanic import Sanic

MAX_QUEUED_TURNS = 8  # turns run one at a time; a client may queue a few behind the current one


class QueuedBytes:
    """Bytes queued on all client sockets of this worker."""

    __slots__ = ("limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    message: str
    kind: str


TOO_MANY_TURNS = Refusal(
    429,
    "too_many_turns",
    "Too many turns queued on this socket; wait for the current one.",
    "invalid_request_error",
)
SOCKET_FULL = Refusal(
    429,
    "too_many_queued_bytes",
    "The turns queued on this socket are too large in total; wait for the current one.",
    "invalid_request_error",
)
WORKER_FULL = Refusal(
    503,
    "server_busy",
    "The server holds too many queued turns right now; retry in a moment.",
    "server_error",
)


def worker_bytes(app: Sanic) -> QueuedBytes:
    """The worker's shared counter, made on first use (app.ctx is per worker process)."""
    counter = getattr(app.ctx, "websocket_queued_bytes", None)
    if counter is None:
        counter = QueuedBytes(app.ctx.settings.websocket_queued_bytes_per_worker)
        app.ctx.websocket_queued_bytes = counter
    return counter


class TurnQueue:
    def __init__(self, socket_limit: int, worker: QueuedBytes) -> None:
        self._items: asyncio.Queue[tuple[dict, int]] = asyncio.Queue()
        self._socket_limit = socket_limit
        self._worker = worker
        self.bytes = 0

    def qsize(self) -> int:
        return self._items.qsize()

    def empty(self) -> bool:
        return self._items.empty()

    def offer(self, frame: dict, size: int) -> Refusal | None:
        """Queue the frame, or say why not."""
        if self._items.qsize() >= MAX_QUEUED_TURNS:
            return TOO_MANY_TURNS
        # An empty socket queue takes any frame the WebSocket size limit let through.
        if self.bytes and self.bytes + size > self._socket_limit:
            return SOCKET_FULL
        if self._worker.total + size > self._worker.limit:
            return WORKER_FULL
        self.bytes += size
        self._worker.total += size
        self._items.put_nowait((frame, size))
        return None

    async def get(self) -> dict:
        frame, size = await self._items.get()
        self._release(size)
        return frame

    def clear(self) -> None:
        """The socket is gone: what it still had queued no longer counts."""
        while not self._items.empty():
            _, size = self._items.get_nowait()
            self._release(size)

    def _release(self, size: int) -> None:
        self.bytes -= size
        self._worker.total -= size
