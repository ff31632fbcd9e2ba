"""A key's all-time figures (GET /v1/usage, the API-key list) are kept as rows are written: they equal
the raw request log's, count a retried batch once, outlive retention pruning, and an upgrade backfills
them from the log; on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import aiohttp
import pytest
from pony import orm

from schema.migrations import discover
from server.db import Database
from server.runtime import migrator
from server.usage import history
from server.usage import key_totals as totals
from server.usage.records import FinishedRequest
from server.usage.tokens import TokenUsage
from server.usage.upkeep import RequestLogUpkeep
from server.usage.writer import COLUMNS, insert_records
from tests.conftest import make_settings
from tests.support.keys import api, bearer, create_key
from tests.support.live_server import serve_in_process
from tests.support.request_log import raw_insert

NOW = time.time()
DAY = 86400.0


@pytest.fixture
async def live_server(tmp_path, database_url):
    """Retention of 7 days, pruned only when a test runs the job with its own clock."""
    quiet = make_settings(
        tmp_path / "data", database_url, request_log_retention_days="7", usage_rollup_interval_seconds="86400"
    )
    async with serve_in_process(quiet) as server:
        yield server


def _records(key_id: int, count: int, started_at: float, prefix: str) -> list[FinishedRequest]:
    """Served requests, with every seventh refused by the key's own rules and every fifth failing
    elsewhere (an empty pool): neither served nor refused."""
    made = []
    for i in range(count):
        common = {"request_id": f"{prefix}_{key_id}_{i}", "started_at": started_at + i, "api_key_id": key_id}
        if i % 7 == 3:
            made.append(FinishedRequest(**common, route="/v1/responses", transport="http", status=429,
                                      error_code="api_key_limit_reached", attempts=0))  # fmt: skip
        elif i % 5 == 4:
            made.append(FinishedRequest(**common, route="/v1/responses", transport="http", status=503,
                                      error_code="no_accounts", attempts=0))  # fmt: skip
        else:
            usage, cost = TokenUsage(100 + i, 10 * (i % 3), 50, 5, 150 + i), 0.001 * (i + 1)
            made.append(FinishedRequest(**common, route="/v1/responses", transport="http", status=200,
                                      account_id=1, model="gpt-5.4", usage=usage, cost_usd=cost))  # fmt: skip
    return made


def _expected(records: list[FinishedRequest]) -> dict:
    served = [r for r in records if r.attempts > 0]
    return {
        "request_count": len(served),
        "refused_count": sum(r.error_code == "api_key_limit_reached" for r in records),
        "total_tokens": sum(r.usage.total_tokens for r in served),
        "cached_input_tokens": sum(r.usage.cached_input_tokens for r in served),
        "cost_usd": round(sum(r.cost_usd for r in served), 6),
        "last_used_at": max(r.started_at for r in served),
    }


async def _figures(server, key: dict) -> tuple[dict, dict]:
    """What GET /v1/usage (with the key) and GET /api/api-keys show of it."""
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/v1/usage", headers=bearer(key)) as response:
            assert response.status == 200, await response.text()
            own = await response.json()
    status, listed = await api(server.url, "GET", "/api/api-keys")
    assert status == 200
    (entry,) = [k for k in listed["api_keys"] if k["id"] == key["id"]]
    return own, entry


def _as_listed(own: dict, entry: dict) -> tuple[dict, dict]:
    usage = {
        "request_count": own["request_count"],
        "refused_count": own["refused_count"],
        "total_tokens": own["total_tokens"],
        "cached_input_tokens": own["cached_input_tokens"],
        "cost_usd": own["total_cost_usd"],
    }
    return usage, {**entry["usage"], "last_used_at": entry["last_used_at"]}


async def test_each_key_shows_exactly_its_own_rows_and_a_retried_batch_counts_once(live_server):
    busy, quiet, idle = [await create_key(live_server.url, name=n) for n in ("busy", "quiet", "idle")]
    mine = _records(busy["id"], 120, NOW - 3600, "a")
    theirs = _records(quiet["id"], 9, NOW - 1800, "b")
    unkeyed = [FinishedRequest(request_id="c_0", started_at=NOW, route="/v1/responses", transport="http",
                             status=200, usage=TokenUsage(1, 0, 1, 0, 2))]  # fmt: skip
    db = live_server.app.ctx.db
    await db.run(insert_records, mine[:60] + theirs + unkeyed)
    # The connection died after the commit: the writer retries the same batch, with more behind it.
    await db.run(insert_records, mine[:60] + mine[60:])

    for key, records in ((busy, mine), (quiet, theirs)):
        own, entry = await _figures(live_server, key)
        usage, listed = _as_listed(own, entry)
        expected = _expected(records)
        assert usage == {k: v for k, v in expected.items() if k != "last_used_at"}
        assert listed == expected
    own, entry = await _figures(live_server, idle)
    assert (own["request_count"], own["total_tokens"], entry["last_used_at"]) == (0, 0, None)


async def test_all_time_figures_outlive_the_pruning_of_old_rows(live_server):
    key = await create_key(live_server.url, name="old timer")
    old = _records(key["id"], 30, NOW - 20 * DAY, "old")
    recent = _records(key["id"], 10, NOW - 600, "new")
    db = live_server.app.ctx.db
    await db.run(insert_records, old + recent)
    before = await _figures(live_server, key)

    upkeep = RequestLogUpkeep(db, retention_days=7, interval_s=3600, clock=lambda: NOW)
    await upkeep.roll_up()
    await upkeep.roll_up()  # rows are pruned once a finished pass has counted them
    assert await upkeep.prune() == 30

    assert await _figures(live_server, key) == before
    assert _as_listed(*before)[1] == _expected(old + recent)


async def test_deleting_a_key_forgets_its_figures(live_server):
    key = await create_key(live_server.url, name="short lived")
    await live_server.app.ctx.db.run(insert_records, _records(key["id"], 5, NOW, "d"))
    assert (await api(live_server.url, "DELETE", f"/api/api-keys/{key['id']}"))[0] == 204

    @orm.db_session
    def stored(orm_db):
        return orm_db.select("SELECT COUNT(*) FROM api_key_totals")[0]

    assert await live_server.app.ctx.db.run(stored) == 0


def test_upgrading_backfills_the_totals_from_the_log(blank_database_url, tmp_path, monkeypatch):
    steps = discover()
    monkeypatch.setattr(migrator, "discover", lambda: [m for m in steps if m.version < 17])
    migrator.migrate(blank_database_url)
    spec = history.HistorySpec(rows=3000, days=3, api_key_ids=(1, 2, 3), now=NOW)
    rows = list(history.rows(spec))
    key_of = COLUMNS.index("api_key_id")
    refused = {"attempts": 0, "error_code": "model_not_allowed"}
    for key_id in (1, 2, 3):  # a few requests of each key that its rules refused
        model = [row for row in rows if row[key_of] == key_id][:10]
        for i, row in enumerate(model):
            changed = {**dict(zip(COLUMNS, row, strict=True)), **refused, "request_id": f"req_no{key_id}_{i}"}
            rows.append(tuple(changed[c] for c in COLUMNS))
    raw_insert(blank_database_url, rows)

    monkeypatch.setattr(migrator, "discover", lambda: steps)
    migrator.migrate(blank_database_url)

    db = Database(make_settings(tmp_path / "data", blank_database_url))
    db.open()
    try:
        got = totals.read(db.orm, [1, 2, 3, 4])
    finally:
        db.close()
    assert set(got) == {1, 2, 3}
    at = {name: COLUMNS.index(name) for name in totals.FIELDS}
    for key_id in (1, 2, 3):
        own = [r for r in rows if r[at["api_key_id"]] == key_id]
        served = [r for r in own if r[at["attempts"]] > 0]
        assert got[key_id].request_count == len(served) > 0
        assert (
            got[key_id].refused_count
            == sum(1 for r in own if r[at["attempts"]] == 0 and r[at["error_code"]] in totals.REFUSAL_CODES)
            > 0
        )
        assert got[key_id].total_tokens == sum(r[at["total_tokens"]] for r in own)
        assert got[key_id].cached_input_tokens == sum(r[at["cached_input_tokens"]] for r in own)
        assert got[key_id].cost_usd == pytest.approx(sum(r[at["cost_usd"]] or 0 for r in own))
        assert got[key_id].last_used_at == pytest.approx(max(r[at["started_at"]] for r in served))
