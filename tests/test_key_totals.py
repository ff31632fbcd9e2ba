"""A key's all-time figures (GET /v1/usage, the API-key list) read only its own rows, and add up to what
the raw request log says, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest
from pony import orm

from server.db import Database
from server.keys import store
from server.usage import history


@pytest.fixture
async def db(settings):
    database = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, database.open)
    yield database
    database.close()


def _fill(orm_db) -> None:
    history.fill(orm_db, history.HistorySpec(rows=3000, days=3, api_key_ids=(1, 2, 3), now=time.time()))
    with orm.db_session:
        # Some requests the key's own rules refused (never reached an account), some failures that are
        # neither served nor refused.
        orm_db.execute(
            "UPDATE request_log SET attempts = 0, error_code = 'api_key_limit_reached' WHERE id % 17 = 0"
        )
        orm_db.execute("UPDATE request_log SET attempts = 0, error_code = 'no_accounts' WHERE id % 23 = 0")


def _by_hand(orm_db, key_id: int) -> store.KeyTotals:
    with orm.db_session:
        rows = orm_db.select(
            "SELECT attempts, total_tokens, cached_input_tokens, cost_usd, started_at, error_code "
            "FROM request_log WHERE api_key_id = $k",
            {},
            {"k": key_id},
        )
    served = [r for r in rows if r[0] > 0]
    return store.KeyTotals(
        len(served),
        sum(r[1] or 0 for r in rows),
        sum(r[2] or 0 for r in rows),
        sum(r[3] or 0 for r in rows),
        max((r[4] for r in served), default=None),
        sum(1 for r in rows if r[0] == 0 and r[5] in store.REFUSAL_CODES),
    )


async def test_each_key_gets_exactly_its_own_figures(db):
    await db.run(_fill)
    together = await db.run(store.totals, [1, 2, 3, 99])
    assert set(together) == {1, 2, 3}  # a key without rows has no entry: the callers default it
    for key_id in (1, 2, 3):
        alone = (await db.run(store.totals, [key_id]))[key_id]
        expected = _by_hand(db.orm, key_id)
        for got in (alone, together[key_id]):
            assert got.request_count == expected.request_count > 0
            assert got.refused_count == expected.refused_count > 0
            assert (got.total_tokens, got.cached_input_tokens) == (
                expected.total_tokens,
                expected.cached_input_tokens,
            )
            assert got.cost_usd == pytest.approx(expected.cost_usd)
            assert got.last_used_at == pytest.approx(expected.last_used_at)


async def test_one_key_is_read_through_its_index(db):
    if not db.url.startswith("sqlite:"):
        pytest.skip("PostgreSQL's planner rightly scans a table this small; scripts/bench-scale times it")
    await db.run(_fill)
    sql = "SELECT COUNT(*), SUM(total_tokens) FROM request_log WHERE api_key_id IN (2)"

    @orm.db_session
    def plan(orm_db) -> str:
        return " ".join(str(r[-1]) for r in orm_db.execute("EXPLAIN QUERY PLAN " + sql).fetchall())

    assert "COVERING INDEX request_log_key_totals" in await db.run(plan)
