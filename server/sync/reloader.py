"""Keeps each worker's in-memory copies (roster, run-time settings, later API keys) current.

A change made in this host bumps the shared generation counter (seen within 50 ms); a
change made by another replica bumps the database change marker (polled every 1.5 seconds). A usage
poll that moved only usage bumps neither: the same check sees the latest poll move and re-reads usage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.balancer.slots import AccountSlots
from server.db import Database
from server.runtime import change_marker

log = logging.getLogger(__name__)
GENERATION_POLL_S = 0.05  # a read of shared memory: cheap enough to do often
DATABASE_POLL_S = 1.5

Reload = Callable[[], Awaitable[None]]


class ChangeWatcher:
    def __init__(
        self, db: Database, slots: AccountSlots, reloaders: list[Reload], usage_reloaders: list[Reload]
    ) -> None:
        self._db = db
        self._slots = slots
        self._reloaders = reloaders
        self._usage_reloaders = usage_reloaders  # after a usage poll that changed nothing else
        self._generation = -1
        self._version = -1
        self._polled = 0.0
        self._task: asyncio.Task | None = None
        # Told each generation this worker has loaded (server.sync.freshness: the API waits for the host).
        self.on_loaded: Callable[[int], None] | None = None

    @property
    def loaded_generation(self) -> int:
        return self._generation

    def add(self, reload: Reload) -> None:
        """Also call `reload` on every change (a per-worker cache that another module owns)."""
        self._reloaders.append(reload)

    async def reload_all(self) -> None:
        generation = self._slots.generation
        version, polled = await self._db.run(change_marker.marks)
        for reload in self._reloaders:
            await reload()
        self._generation, self._version, self._polled = generation, version, polled
        if self.on_loaded is not None:
            self.on_loaded(generation)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="change-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _watch(self) -> None:
        since_db_check = 0.0
        while True:
            await asyncio.sleep(GENERATION_POLL_S)
            since_db_check += GENERATION_POLL_S
            try:
                if self._slots.generation != self._generation:
                    await self.reload_all()
                elif since_db_check >= DATABASE_POLL_S:
                    since_db_check = 0.0
                    version, polled = await self._db.run(change_marker.marks)
                    if version != self._version:
                        await self.reload_all()
                    elif polled != self._polled:
                        self._polled = polled
                        for reload in self._usage_reloaders:
                            await reload()
            except Exception:  # the watcher must survive a database hiccup; the next poll retries
                log.exception("reload failed")
