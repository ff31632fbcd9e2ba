"""The accounts list and page say when each account last served a request (the dashboard's "last used"),
kept apart from the request log so neither a large log nor its pruning changes it."""

from __future__ import annotations

import time

import pytest

from schema.migrations import discover
from server.db import Database
from server.runtime import migrator
from server.usage import history, last_use, queries
from server.usage.records import FinishedRequest
from server.usage.upkeep import RequestLogUpkeep
from server.usage.writer import COLUMNS, insert_records
from tests.conftest import make_settings
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.support.request_log import raw_insert


async def test_an_account_that_served_a_request_shows_when(proxy):
    first, second = await proxy.add_accounts("acct-a", "acct-b")
    before = time.time()
    answer = await proxy.post(CODEX_ROUTE, codex_body("hi"), headers={"session_id": "s-1"})
    assert answer.status == 200
    (served,) = await proxy.request_logs(1)

    async def accounts_by_id() -> dict[int, dict]:
        return {a["id"]: a for a in await proxy.accounts()}

    accounts = await eventually(
        accounts_by_id, lambda accounts: accounts[served["account_id"]]["last_used_at"], timeout=10
    )
    used = accounts[served["account_id"]]
    idle = accounts[({first["id"], second["id"]} - {served["account_id"]}).pop()]
    assert before - 1 <= used["last_used_at"] <= time.time()
    assert idle["last_used_at"] is None
    async with proxy.session.get(f"{proxy.url}/api/accounts/{served['account_id']}") as response:
        assert (await response.json())["last_used_at"] == used["last_used_at"]


async def test_the_latest_use_stays_through_late_rows_and_pruning(proxy):
    """A batch may land rows older than one already recorded, and retention deletes the raw rows: the
    account still shows its latest use."""
    (account,) = await proxy.add_accounts("acct-late")
    now = time.time()
    database = Database(proxy.settings)
    database.open()
    try:
        latest = now - 40 * 86400
        await database.run(
            insert_records, [_record(account["id"], latest), _record(account["id"], latest - 60)]
        )
        await database.run(insert_records, [_record(account["id"], latest - 3600)])  # a late, older row
        assert (await _last_used(proxy, account["id"])) == pytest.approx(latest)
        pruned = RequestLogUpkeep(database, retention_days=30, interval_s=60, clock=lambda: now)
        await pruned.run()
        await pruned.run()  # raw rows go once a finished pass before has counted them
        assert not await database.run(queries.recent_requests, 10, account["id"])
        assert (await _last_used(proxy, account["id"])) == pytest.approx(latest)
    finally:
        database.close()


def test_upgrading_backfills_each_accounts_last_use_from_the_log(blank_database_url, tmp_path, monkeypatch):
    steps = discover()
    monkeypatch.setattr(migrator, "discover", lambda: [m for m in steps if m.version < 21])
    migrator.migrate(blank_database_url)
    spec = history.HistorySpec(rows=600, days=3, account_ids=(4, 5, 6), now=time.time())
    rows = list(history.rows(spec))
    raw_insert(blank_database_url, rows)  # as an older version wrote them: nothing kept their last use
    monkeypatch.setattr(migrator, "discover", lambda: steps)
    migrator.migrate(blank_database_url)

    database = Database(make_settings(tmp_path / "data", blank_database_url))
    database.open()
    try:
        expected: dict[int, float] = {}
        for row in rows:
            account_id, started_at = row[COLUMNS.index("account_id")], row[COLUMNS.index("started_at")]
            if account_id is not None:  # a request no account served
                expected[account_id] = max(expected.get(account_id, 0.0), started_at)
        assert set(expected) == {4, 5, 6}
        assert last_use.of_all(database.orm) == pytest.approx(expected)
    finally:
        database.close()


def _record(account_id: int, started_at: float) -> FinishedRequest:
    return FinishedRequest(
        request_id=f"req_{time.monotonic_ns()}", route="/v1/responses", transport="http", status=200,
        model="gpt-5.4", account_id=account_id, started_at=started_at,
    )  # fmt: skip


async def _last_used(proxy, account_id: int) -> float | None:
    return {a["id"]: a["last_used_at"] for a in await proxy.accounts()}[account_id]
