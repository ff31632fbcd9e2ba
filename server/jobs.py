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

from server.db import Database
from server.runtime import leases

log = logging.getLogger(__name__)


# A job's lease is short and renewed while held, so a holder that died (or stopped without releasing)
# is replaced within this, whatever the job's interval (a lease as long as the interval would leave a
# 5-minute job unrun for up to 10 minutes).
JOB_LEASE_TTL_S = 15.0
RELEASE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    run_at_start: bool = True
    lease_ttl_s: float | None = None  # default: JOB_LEASE_TTL_S, renewed every third of it


class JobRunner:
    def __init__(self, db: Database, holder: str) -> None:
        self._db = db
        self._holder = holder
        self._tasks: list[asyncio.Task] = []
        self._held: dict[str, leases.Lease] = {}
        self.runs: dict[str, int] = {}

    def start(self, jobs: list[PeriodicJob]) -> None:
        for job in jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job-{job.name}"))

    async def stop(self) -> None:
        """Stop every job and release the leases held, so another worker or replica takes over now."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        held, self._held = list(self._held.values()), {}
        for lease in held:
            try:
                await asyncio.wait_for(self._db.run(leases.release, lease), RELEASE_TIMEOUT_S)
            except Exception:  # the lease then expires by itself within its short term
                log.warning("job lease not released name=%s", lease.name)

    async def _loop(self, job: PeriodicJob) -> None:
        ttl = job.lease_ttl_s or JOB_LEASE_TTL_S
        name = f"job:{job.name}"
        last_run = None if job.run_at_start else time.monotonic()
        while True:
            wait = ttl / 3
            try:
                lease = await self._db.run(leases.acquire, name, self._holder, ttl)
                if lease is None:
                    self._held.pop(name, None)
                else:
                    self._held[name] = lease
                    due_in = 0.0 if last_run is None else job.interval_s - (time.monotonic() - last_run)
                    if due_in <= 0:
                        last_run = time.monotonic()
                        await self._run_holding(job, name, ttl)
                        self.runs[job.name] = self.runs.get(job.name, 0) + 1
                        due_in = job.interval_s - (time.monotonic() - last_run)
                    wait = max(0.0, min(wait, due_in))
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed run must not end the job; the next interval retries
                log.exception("job failed name=%s", job.name)
            await asyncio.sleep(wait)

    async def _run_holding(self, job: PeriodicJob, name: str, ttl: float) -> None:
        """Run the job while renewing its lease, so a run longer than the lease term stays exclusive."""
        renewer = asyncio.create_task(self._renew(name, ttl), name=f"job-lease-{job.name}")
        try:
            await job.run()
        finally:
            renewer.cancel()

    async def _renew(self, name: str, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                lease = await self._db.run(leases.acquire, name, self._holder, ttl)
            except Exception:  # a database hiccup: try again at the next renewal
                log.warning("job lease renewal failed name=%s", name)
                continue
            if lease is None:
                log.warning("job lease lost while running name=%s", name)
                self._held.pop(name, None)
                return
            self._held[name] = lease
