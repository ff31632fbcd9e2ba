"""The per-worker pool of upstream WebSockets: reused per (account, conversation), bounded, closed when idle.

A socket is leased by one turn (HTTP clients) or one client socket (WebSocket clients) at a time. When
the total bound is reached, the least recently used idle socket of any account makes room; a full
account raises PoolFull so the caller can move to another account (never a failed request while
another account has room).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from server.upstream.websocket import UpstreamSocket

log = logging.getLogger(__name__)

SOCKET_MAX_AGE_S = 55 * 60  # the backend ends sockets at 60 minutes; do not start turns near that


class PoolFull(Exception):
    """No room for another socket on this account (or at all) right now."""

    def __init__(self, account_id: int, whole_pool: bool) -> None:
        super().__init__(f"upstream WebSocket pool full (account={account_id} whole_pool={whole_pool})")
        self.account_id = account_id
        self.whole_pool = whole_pool


class SocketPool:
    def __init__(self, per_account: int, total: int, idle_s: float) -> None:
        self.per_account = per_account
        self.total = total
        self.idle_s = idle_s
        self._idle: dict[tuple[int, str], list[UpstreamSocket]] = {}
        self._count: dict[int, int] = {}  # live sockets (idle + leased) per account
        self._live = 0
        self._reaper: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self.opened = 0
        self.reused = 0

    @property
    def live(self) -> int:
        return self._live

    def idle_count(self) -> int:
        return sum(len(sockets) for sockets in self._idle.values())

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="upstream-ws-reaper")

    async def lease(
        self, account_id: int, key: str, opener: Callable[[], Awaitable[UpstreamSocket]]
    ) -> UpstreamSocket:
        """An idle socket of this account and conversation, else a new one from `opener`."""
        idle = self._idle.get((account_id, key))
        now = time.monotonic()
        while idle:
            socket = idle.pop()
            if socket.usable and now - socket.opened_mono < SOCKET_MAX_AGE_S:
                self.reused += 1
                return socket
            self._forget(socket)
        if self._count.get(account_id, 0) >= self.per_account and not self._evict(account_id):
            raise PoolFull(account_id, whole_pool=False)
        if self._live >= self.total and not self._evict(None):
            raise PoolFull(account_id, whole_pool=True)
        self._count[account_id] = self._count.get(account_id, 0) + 1
        self._live += 1
        try:
            socket = await opener()
        except BaseException:
            self._count[account_id] -= 1
            self._live -= 1
            raise
        self.opened += 1
        return socket

    def give_back(self, socket: UpstreamSocket, healthy: bool) -> None:
        """The lease ended: keep a healthy socket for the next turn of its conversation, else close it."""
        age = time.monotonic() - socket.opened_mono
        if healthy and socket.usable and age < SOCKET_MAX_AGE_S:
            socket.last_used_mono = time.monotonic()
            self._idle.setdefault((socket.account_id, socket.key), []).append(socket)
            return
        self._forget(socket)

    def _forget(self, socket: UpstreamSocket) -> None:
        self._count[socket.account_id] = max(0, self._count.get(socket.account_id, 0) - 1)
        self._live = max(0, self._live - 1)
        task = asyncio.create_task(socket.close(), name="upstream-ws-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _evict(self, account_id: int | None) -> bool:
        """Close the least recently used idle socket (of `account_id`, or of any account)."""
        found: tuple[tuple[int, str], UpstreamSocket] | None = None  # its key in _idle, and the socket
        for key, sockets in self._idle.items():
            if account_id is not None and key[0] != account_id:
                continue
            for socket in sockets:
                if found is None or socket.last_used_mono < found[1].last_used_mono:
                    found = key, socket
        if found is None:
            return False
        key, oldest = found
        self._idle[key].remove(oldest)
        if not self._idle[key]:
            del self._idle[key]
        self._forget(oldest)
        return True

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.idle_s / 2))
            cutoff = time.monotonic() - self.idle_s
            for key in list(self._idle):
                keep = []
                for socket in self._idle[key]:
                    if socket.last_used_mono < cutoff or not socket.usable:
                        self._forget(socket)
                    else:
                        keep.append(socket)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for sockets in self._idle.values():
            for socket in sockets:
                self._forget(socket)
        self._idle.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
