"""The request log writer: batched, never blocking the proxy, losing nothing through outages or shutdown."""

from __future__ import annotations

import asyncio
import inspect
import logging

import psycopg2
import pytest
from pony import orm

from server.config import Settings
from server.db import Database
from server.usage.queries import recent_requests, usage_totals
from server.usage.records import FinishedRequest
from server.usage.tokens import TokenUsage
from server.usage.writer import RequestLogWriter, insert_records
from tests.support.databases import fresh_postgres_schema
from tests.support.polling import eventually


@pytest.fixture
def db(database_url, tmp_path):
    settings = Settings.load(
        {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_DATABASE_URL": database_url}, cwd=tmp_path
    )
    database = Database(settings)
    database.open()
    yield database
    database.close()


def record(n: int, **changes) -> FinishedRequest:
    fields = dict(
        request_id=f"req_{n:024x}",
        started_at=1_700_000_000.0 + n,
        route="/backend-api/codex/responses",
        transport="http",
        status=200,
        account_id=n % 3 + 1,
        api_key_id=7 if n % 2 else None,
        model="gpt-5.4",
        reasoning_effort="high",
        usage=TokenUsage(100 + n, 40, 20, 5, 120 + n),
        cost_usd=0.001 * n,
        latency_ms=12.5,
        ttft_ms=3.25 if n % 2 else None,
        attempts=1 + n % 2,
        session_key_hash=f"hash{n}",
        routing="sticky",
    )
    fields.update(changes)
    return FinishedRequest(**fields)


@orm.db_session
def _row_count(orm_db: orm.Database) -> int:
    return orm_db.select("SELECT COUNT(*) FROM request_log")[0]


@orm.db_session
def _rename_table(orm_db: orm.Database, old: str, new: str) -> None:
    orm_db.execute(f"ALTER TABLE {old} RENAME TO {new}")


def count_inserts(db: Database) -> list[int]:
    """Spy on the runner: the size of every insert batch handed to the database."""
    batches: list[int] = []
    run = db.run

    async def counting_run(fn, *args):
        if fn is insert_records:
            batches.append(len(args[0]))
        return await run(fn, *args)

    db.run = counting_run
    return batches


async def test_every_record_submitted_before_stop_is_written_with_its_fields(db):
    writer = RequestLogWriter(db, batch_size=128)
    writer.start()
    records = [record(n) for n in range(1000)]
    for item in records:
        writer.submit(item)
    await writer.stop()

    assert (writer.written, writer.dropped, writer.pending) == (1000, 0, 0)
    assert await db.run(_row_count) == 1000
    rows = {row["request_id"]: row for row in await db.run(recent_requests, 1000)}
    for item in (records[0], records[1], records[999]):
        row = rows[item.request_id]
        assert row["started_at"] == item.started_at
        assert (row["route"], row["transport"], row["status"]) == (item.route, item.transport, 200)
        assert (row["account_id"], row["api_key_id"]) == (item.account_id, item.api_key_id)
        assert (row["model"], row["reasoning_effort"], row["error_code"]) == ("gpt-5.4", "high", "")
        assert (row["input_tokens"], row["cached_input_tokens"]) == (item.usage.input_tokens, 40)
        assert (row["output_tokens"], row["reasoning_tokens"]) == (20, 5)
        assert row["total_tokens"] == item.usage.total_tokens
        assert row["cost_usd"] == pytest.approx(item.cost_usd)
        assert (row["latency_ms"], row["ttft_ms"], row["attempts"]) == (12.5, item.ttft_ms, item.attempts)
        assert (row["session_key_hash"], row["routing"]) == (item.session_key_hash, "sticky")


async def test_a_failed_request_without_usage_is_logged_with_zero_tokens_and_no_cost(db):
    writer = RequestLogWriter(db)
    writer.submit(record(1, status=502, error_code="upstream_unavailable", usage=None, cost_usd=None))
    await writer.flush()
    [row] = await db.run(recent_requests)
    assert (row["status"], row["error_code"], row["total_tokens"], row["cost_usd"]) == (
        502,
        "upstream_unavailable",
        0,
        None,
    )


async def test_records_are_inserted_in_batches_one_transaction_each(db):
    batches = count_inserts(db)
    writer = RequestLogWriter(db, batch_size=500)
    writer.start()
    for n in range(1200):
        writer.submit(record(n))
    await writer.flush()
    assert batches == [500, 500, 200]
    assert await db.run(_row_count) == 1200
    await writer.stop()
    assert batches == [500, 500, 200]  # nothing left over to write


async def test_the_background_task_writes_a_partial_batch_after_the_flush_interval(db):
    batches = count_inserts(db)
    writer = RequestLogWriter(db, flush_interval=0.02)
    writer.start()
    for n in range(3):
        writer.submit(record(n))
    await eventually(lambda: writer.written, lambda n: n == 3, timeout=10, interval=0.005)
    assert batches == [3]
    await writer.stop()


async def test_a_database_outage_loses_nothing_and_is_logged(db, caplog):
    caplog.set_level(logging.WARNING, logger="server.usage.writer")
    writer = RequestLogWriter(db, batch_size=20, flush_interval=0.01, retry_initial=0.01, retry_max=0.05)
    writer.start()
    await db.run(_rename_table, "request_log", "request_log_offline")
    for n in range(50):
        writer.submit(record(n))
    await eventually(lambda: writer.failed_writes, lambda n: n >= 2, timeout=10, interval=0.005)
    assert (writer.written, writer.pending, writer.dropped) == (0, 50, 0)

    await db.run(_rename_table, "request_log_offline", "request_log")
    for n in range(50, 60):
        writer.submit(record(n))
    await eventually(lambda: writer.written, lambda n: n == 60, timeout=10, interval=0.005)
    await writer.stop()

    assert (writer.written, writer.pending, writer.dropped) == (60, 0, 0)
    assert await db.run(_row_count) == 60
    assert len({row["request_id"] for row in await db.run(recent_requests, 100)}) == 60
    failures = [r.getMessage() for r in caplog.records if "request log write failed" in r.getMessage()]
    assert failures and all("\n" not in line and "records=" in line for line in failures)


async def test_stop_writes_what_an_outage_held_back_once_the_database_returns(db):
    writer = RequestLogWriter(db, flush_interval=0.01, retry_initial=0.01, retry_max=0.02)
    writer.start()
    await db.run(_rename_table, "request_log", "request_log_offline")
    for n in range(10):
        writer.submit(record(n))
    await eventually(lambda: writer.failed_writes, lambda n: n >= 1, timeout=10, interval=0.005)
    stopping = asyncio.create_task(writer.stop())
    # stop() keeps retrying rather than giving up
    await eventually(lambda: writer.failed_writes, lambda n: n >= 3, timeout=10, interval=0.005)
    assert not stopping.done()
    await db.run(_rename_table, "request_log_offline", "request_log")
    await stopping
    assert await db.run(_row_count) == 10


class StalledDatabase:
    """A database whose every call hangs until released, and then fails or succeeds as told."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def run(self, fn, *args):
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise OSError("database unreachable")
        return len(args[0])


async def test_submit_never_waits_for_a_stalled_database_and_drops_oldest_when_full(caplog):
    assert not inspect.iscoroutinefunction(RequestLogWriter.submit)
    database = StalledDatabase()
    writer = RequestLogWriter(database, batch_size=10, max_pending=100, flush_interval=0.01)
    writer.start()
    for n in range(10):
        assert writer.submit(record(n)) is None
    assert database.calls == 0  # submit itself never touches the database
    # the writer is now stuck inside the database
    await eventually(lambda: database.calls, lambda n: n == 1, timeout=10, interval=0.005)

    for n in range(10, 1010):  # no await in between: each submit returns at once
        writer.submit(record(n))
    assert (writer.pending, writer.dropped, database.calls) == (110, 900, 1)
    drop_lines = [r for r in caplog.records if "dropped oldest" in r.getMessage()]
    assert len(drop_lines) == 1 and "total_dropped=1 " in drop_lines[0].getMessage()

    database.release.set()
    await writer.stop()
    assert (writer.written, writer.dropped, writer.pending) == (110, 900, 0)


async def test_stop_gives_up_at_its_deadline_and_logs_what_is_lost(caplog):
    database = StalledDatabase()
    database.fail = True
    database.release.set()
    writer = RequestLogWriter(database, retry_initial=0.01, retry_max=0.02)
    writer.start()
    for n in range(5):
        writer.submit(record(n))
    await writer.stop(timeout=0.2)
    assert writer.written == 0 and writer.pending == 5
    assert any("lost=5" in r.getMessage() for r in caplog.records)


async def test_recent_requests_are_newest_first_and_filter_by_account(db):
    writer = RequestLogWriter(db)
    for n in range(30):
        writer.submit(record(n))
    await writer.flush()

    newest = await db.run(recent_requests, 5)
    assert [row["request_id"] for row in newest] == [record(n).request_id for n in range(29, 24, -1)]
    assert isinstance(newest[0]["id"], int)
    of_account = await db.run(recent_requests, 100, 2)
    assert len(of_account) == 10 and {row["account_id"] for row in of_account} == {2}
    assert await db.run(recent_requests, 10, 99) == []


async def test_usage_totals_sum_tokens_and_cost_since_a_time(db):
    writer = RequestLogWriter(db)
    for n in range(10):
        writer.submit(record(n))
    writer.submit(record(10, model="mystery-model", cost_usd=None))
    writer.submit(record(11, status=502, usage=None, cost_usd=None))
    await writer.flush()

    since = record(4).started_at
    totals = await db.run(usage_totals, since)
    assert totals == {
        "requests": 8,
        "input_tokens": sum(100 + n for n in range(4, 11)),
        "cached_input_tokens": 40 * 7,
        "output_tokens": 20 * 7,
        "reasoning_tokens": 5 * 7,
        "total_tokens": sum(120 + n for n in range(4, 11)),
        "cost_usd": pytest.approx(0.001 * sum(range(4, 10))),
        "unpriced_requests": 1,
    }
    of_account = await db.run(usage_totals, 0.0, 1)
    assert of_account["requests"] == 4 and of_account["input_tokens"] == sum(100 + n for n in (0, 3, 6, 9))
    empty = await db.run(usage_totals, 2_000_000_000.0)
    assert empty == {
        "requests": 0,
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "unpriced_requests": 0,
    }


@orm.db_session
def _backend_pid(orm_db: orm.Database) -> int:
    return orm_db.select("SELECT pg_backend_pid()")[0]


def _terminate_backend(database_url: str, pid: int) -> None:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def postgres_url():
    with fresh_postgres_schema() as url:
        yield url


async def test_a_dropped_postgres_connection_is_survived(postgres_url, tmp_path):
    database_url = postgres_url
    environ = {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_DATABASE_URL": database_url}
    db = Database(Settings.load({**environ, "CODEX_LB_DB_THREADS": "1"}, cwd=tmp_path))
    db.open()
    try:
        writer = RequestLogWriter(db, flush_interval=0.01, retry_initial=0.01, retry_max=0.05)
        writer.start()
        writer.submit(record(0))
        await eventually(lambda: writer.written, lambda n: n == 1, timeout=10, interval=0.005)
        # One pool thread, so one connection: kill exactly the writer's own backend, nobody else's.
        await asyncio.to_thread(_terminate_backend, database_url, await db.run(_backend_pid))
        for n in range(1, 40):
            writer.submit(record(n))
        await writer.stop()
        assert writer.failed_writes >= 1  # the dead connection really failed a batch
        assert (writer.written, writer.pending) == (40, 0)
        assert await db.run(_row_count) == 40
    finally:
        db.close()


def test_a_batch_written_twice_is_stored_once(db):
    """A retry after a lost commit answer must not count the requests again."""
    batch = [record(n) for n in range(5)]
    db_orm = db.orm
    assert insert_records(db_orm, batch) == 5
    insert_records(db_orm, batch[2:] + [record(9)])
    assert _row_count(db_orm) == 6
