"""The request log's background writer: the proxy submits records in O(1), one task inserts them in batches.

Owns the write path of `request_log`. Until a batch commits its records live only in this worker's memory,
so a failed batch is kept and retried, overflow drops the oldest (counted and logged), stop() drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque

from pony import orm
from psycopg2.extras import execute_values

from server.db import Database
from server.usage import key_totals, last_use
from server.usage.records import FinishedRequest
from server.usage.tokens import TokenUsage

log = logging.getLogger(__name__)

COLUMNS = (
    "request_id",
    "started_at",
    "route",
    "transport",
    "account_id",
    "api_key_id",
    "model",
    "reasoning_effort",
    "status",
    "error_code",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "session_key_hash",
    "routing",
    "upstream_transport",
    "egress",
    "user_agent",
    "failovers",
)
# A retried batch may have been committed already (the connection died before the commit's answer):
# request ids are unique, so such rows are skipped instead of counted twice. The insert returns what
# each row it did write adds to its key's all-time totals, which the same transaction counts.
_RETURNING = f" ON CONFLICT (request_id) DO NOTHING RETURNING {', '.join(key_totals.FIELDS)}"
_INSERT = f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES "
_SQLITE_ROW = f"({', '.join('?' * len(COLUMNS))})"
_SQLITE_CHUNK = 400  # rows per statement: 10,000 parameters, well inside SQLite's limit
_NO_USAGE = TokenUsage()
DROP_LOG_INTERVAL_S = 10.0


@orm.db_session
def insert_records(orm_db: orm.Database, records: list[FinishedRequest]) -> int:
    """Insert a batch and count it into its keys' totals and its accounts' last use, in one transaction.
    Raw multi-row SQL: about 10x faster than one Pony entity a row."""
    rows = [_row(record) for record in records]
    if not rows:
        return 0
    cursor = orm_db.get_connection().cursor()
    if orm_db.provider.dialect == "PostgreSQL":
        written = execute_values(cursor, _INSERT + "%s" + _RETURNING, rows, page_size=len(rows), fetch=True)
    else:
        written = []
        for start in range(0, len(rows), _SQLITE_CHUNK):
            chunk = rows[start : start + _SQLITE_CHUNK]
            values = [v for row in chunk for v in row]
            cursor.execute(_INSERT + ", ".join([_SQLITE_ROW] * len(chunk)) + _RETURNING, values)
            written += cursor.fetchall()
    key_totals.add(orm_db, written)
    last_use.add(orm_db, ((record.account_id, record.started_at) for record in records))
    return len(rows)


def _row(record: FinishedRequest) -> tuple:
    usage = record.usage or _NO_USAGE
    return (
        record.request_id,
        record.started_at,
        record.route,
        record.transport,
        record.account_id,
        record.api_key_id,
        record.model,
        record.reasoning_effort,
        record.status,
        record.error_code,
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.output_tokens,
        usage.reasoning_tokens,
        usage.total_tokens,
        record.cost_usd,
        record.latency_ms,
        record.ttft_ms,
        record.attempts,
        record.session_key_hash,
        record.routing,
        record.upstream_transport,
        record.egress,
        record.user_agent,
        record.failovers,
    )


class RequestLogWriter:
    """Batches FinishedRequests into request_log. Call submit() from the event loop's thread only."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        max_pending: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need 1 <= batch_size <= max_pending")
        self._db = db
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._queue: deque[FinishedRequest] = deque()
        self._writes: set[asyncio.Future[int]] = set()  # batches handed to the database, not yet settled
        self._writing = 0  # records inside those batches
        self._lock = asyncio.Lock()  # one batch at a time, oldest first
        self._batch_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._submitted = 0
        self._drops_unlogged = 0
        self._drops_logged_at = float("-inf")
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0

    @property
    def pending(self) -> int:
        """Records submitted but not yet committed (queued or in a batch being written)."""
        return len(self._queue) + self._writing

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("request log writer already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="request-log-writer")
        self._task.add_done_callback(_report_crash)

    def submit(self, record: FinishedRequest) -> None:
        """Queue one record: O(1), never awaits, never touches the database."""
        queue = self._queue
        if len(queue) >= self._max_pending:
            queue.popleft()
            self._count_drops(1)
        queue.append(record)
        self._submitted += 1
        if len(queue) >= self._batch_size:
            self._batch_ready.set()

    async def flush(self, timeout: float | None = None) -> None:
        """Write everything submitted so far, retrying through database errors; TimeoutError if it can't."""
        target = self._submitted
        backoff = self._retry_initial
        async with asyncio.timeout(timeout), self._lock:
            while self.written + self.dropped < target and self.pending:
                if self._writes:  # a batch from a cancelled caller is still in the database's hands
                    await asyncio.wait(set(self._writes))
                elif await self._write_batch():
                    backoff = self._retry_initial
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._retry_max)

    async def stop(self, timeout: float = 30.0) -> None:
        """Drain everything submitted, then end the task; records unwritten at the deadline are logged."""
        self._stopping.set()
        self._batch_ready.set()  # wake the task now rather than after flush_interval
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(timeout):
                if task is not None:
                    await asyncio.wait({task})  # it finishes its current batch and returns
                await self.flush()
        except TimeoutError:
            log.error("request log writer stopped with unwritten records: lost=%d", self.pending)
        finally:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})

    async def _run(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            if backoff:
                await _wait(self._stopping, backoff)  # new records must not cut a back-off short
            else:
                await _wait(self._batch_ready, self._flush_interval)
            self._batch_ready.clear()
            async with self._lock:
                ok = True
                while ok and self._queue and not self._stopping.is_set():
                    ok = await self._write_batch()
            backoff = 0.0 if ok else min(max(backoff * 2, self._retry_initial), self._retry_max)

    async def _write_batch(self) -> bool:
        """Write the oldest batch; on failure it goes back to the front of the queue. True on success."""
        batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        self._writing += len(batch)
        write = asyncio.ensure_future(self._db.run(insert_records, batch))
        self._writes.add(write)
        # Settled by callback, not after the await: if our caller is cancelled mid-write, the database
        # thread still finishes the insert, and its outcome must still be counted or the batch requeued.
        write.add_done_callback(functools.partial(self._settle, batch))
        await asyncio.wait({write})  # unlike `await write`, cancelling us does not cancel the write
        return not write.cancelled() and write.exception() is None

    def _settle(self, batch: list[FinishedRequest], write: asyncio.Future[int]) -> None:
        self._writes.discard(write)
        self._writing -= len(batch)
        error = "cancelled" if write.cancelled() else write.exception()
        if error is None:
            self.written += len(batch)
            return
        # Any failure (driver error, lost connection, closed pool) is retried: these rows exist nowhere else.
        self.failed_writes += 1
        self._queue.extendleft(reversed(batch))
        overflow = len(self._queue) - self._max_pending
        for _ in range(overflow):
            self._queue.popleft()
        if overflow > 0:
            self._count_drops(overflow)
        detail = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        log.warning(
            "request log write failed, will retry: records=%d pending=%d failures=%d error=%s",
            len(batch),
            self.pending,
            self.failed_writes,
            detail,
        )

    def _count_drops(self, count: int) -> None:
        self.dropped += count
        self._drops_unlogged += count
        now = time.monotonic()
        if now - self._drops_logged_at >= DROP_LOG_INTERVAL_S:
            log.error(
                "request log queue full, dropped oldest records: dropped=%d total_dropped=%d max_pending=%d",
                self._drops_unlogged,
                self.dropped,
                self._max_pending,
            )
            self._drops_logged_at = now
            self._drops_unlogged = 0


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("request log writer task crashed", exc_info=task.exception())
