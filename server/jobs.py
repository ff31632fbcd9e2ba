"""Periodic jobs (usage polling, model sync, retention…), each run by exactly one worker of one replica.

Every worker runs a JobRunner; before each run a worker must hold the job's lease (`job:<name>`),
renewed while it keeps winning, so a crashed holder is replaced once its lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server import leases
from server.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    run_at_start: bool = True
    lease_ttl_s: float | None = None  # default: two intervals, at least 5 s


class JobRunner:
    def __init__(self, db: Database, holder: str) -> None:
        self._db = db
        self._holder = holder
        self._tasks: list[asyncio.Task] = []
        self.runs: dict[str, int] = {}

    def start(self, jobs: list[PeriodicJob]) -> None:
        for job in jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job-{job.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()

    async def _loop(self, job: PeriodicJob) -> None:
        # The lease outlives one interval, so the holder keeps it from run to run, and a crashed
        # holder's lease expires within two intervals.
        ttl = job.lease_ttl_s or max(job.interval_s * 2, 5.0)
        if not job.run_at_start:
            await asyncio.sleep(job.interval_s)
        while True:
            started = time.monotonic()
            try:
                lease = await self._db.run(leases.acquire, f"job:{job.name}", self._holder, ttl)
                if lease is not None:
                    await job.run()
                    self.runs[job.name] = self.runs.get(job.name, 0) + 1
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed run must not end the job; the next interval retries
                log.exception("job failed name=%s", job.name)
            await asyncio.sleep(max(0.0, job.interval_s - (time.monotonic() - started)))
