"""The request log's one lease-holding job: roll new rows up into hourly, daily and weekly totals, then delete
raw rows past the retention in small batches, each its own short transaction, so the writer never waits
long for the database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from pony import orm

from server.db import Database
from server.jobs import PeriodicJob
from server.usage import rollups

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000
PRUNE_PAUSE_S = 0.05  # between batches: the writer's next batch gets the database first


@orm.db_session
def prune_batch(orm_db: orm.Database, before: float, counted_up_to: int, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` raw rows older than `before` that a finished rollup pass has counted."""
    cursor = orm_db.execute(
        "DELETE FROM request_log WHERE id IN (SELECT id FROM request_log "
        f"WHERE started_at < $before AND id <= $counted ORDER BY id LIMIT {int(batch)})",
        {},
        {"before": before, "counted": counted_up_to},
    )
    return cursor.rowcount


class RequestLogUpkeep:
    def __init__(
        self, db: Database, retention_days: float, interval_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self.retention_days = retention_days  # the run-time setting replaces it (server.runtime_settings)
        self._interval_s = interval_s
        self._clock = clock

    def jobs(self) -> list[PeriodicJob]:
        return [PeriodicJob("request-log-rollups", self._interval_s, self.run)]

    async def run(self) -> None:
        await self.roll_up()
        await self.prune()

    async def roll_up(self) -> rollups.RollupPlan:
        # One short transaction per hour, day and week, so a long backfill never holds the write lock.
        todo = await self._db.run(rollups.plan, self._clock(), self.retention_days)
        for hour in todo.hours:
            await self._db.run(rollups.roll_hour, hour)
        for day in todo.days:
            await self._db.run(rollups.roll_day, day)
        for week in todo.weeks:
            await self._db.run(rollups.roll_week, week)
        sessions = await self._db.run(rollups.touched_sessions, todo.scan_from)
        for start in range(0, len(sessions), rollups.SESSION_BATCH):
            await self._db.run(rollups.roll_sessions, sessions[start : start + rollups.SESSION_BATCH])
        await self._db.run(rollups.finish, todo)
        return todo

    async def prune(self) -> int:
        cut = rollups.retention_cut(self._clock(), self.retention_days)
        if not cut:
            return 0
        counted = await self._db.run(rollups.counted_up_to)
        deleted = 0
        while True:
            n = await self._db.run(prune_batch, float(cut), counted)
            deleted += n
            if n < PRUNE_BATCH:
                break
            await asyncio.sleep(PRUNE_PAUSE_S)
        if deleted:
            log.info(
                "request log pruned rows=%d before=%d retention_days=%s", deleted, cut, self.retention_days
            )
        return deleted
