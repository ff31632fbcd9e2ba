"""The dashboard's history API: request-log pages and filters with a stable cursor, one row, the CSV,
usage from the rollups (equal to the raw rows' sums, also across a retention cut) and sessions."""

from __future__ import annotations

import csv
import io
import itertools
import random
import time

import aiohttp
import pytest
from pony import orm

from schema.migrations import discover
from schema.migrations import v0022_request_log_failures as failures_migration
from server.db import Database
from server.runtime import migrator
from server.usage import browse, history, rollups
from server.usage.records import FinishedRequest
from server.usage.tokens import TokenUsage
from server.usage.upkeep import RequestLogUpkeep
from server.usage.writer import insert_records
from tests.conftest import make_settings
from tests.support.live_server import serve_in_process
from tests.support.polling import eventually

NOW = time.time() // 3600 * 3600 - 1800  # half past an hour; the tests pass the clock to each pass
_SUMS = (
    "COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens), SUM(reasoning_tokens), "
    "SUM(total_tokens), SUM(COALESCE(cost_usd, 0)), "
    "SUM(CASE WHEN status >= 400 OR error_code <> '' THEN 1 ELSE 0 END)"
)


@pytest.fixture
async def live_server(tmp_path, database_url):
    """The server's own rollup job stays out of the way: the tests run each pass with their own clock."""
    quiet = make_settings(
        tmp_path / "data", database_url, request_log_retention_days="0", usage_rollup_interval_seconds="86400"
    )
    async with serve_in_process(quiet) as server:
        jobs = server.app.ctx.proxy.jobs
        # Its run at start is over: from now on only the tests roll up.
        await eventually(lambda: jobs.runs.get("request-log-rollups"), timeout=10, interval=0.02)
        yield server


async def _get(server, path: str, **params):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path, params={k: str(v) for k, v in params.items()}) as response:
            body = await response.read()
            assert response.status == 200, body[:300]
            return await response.json() if response.content_type == "application/json" else body.decode()


def _raw_sums(orm_db, since: float, until: float) -> dict:

    with orm.db_session:
        row = orm_db.select(f"SELECT {_SUMS} FROM request_log WHERE started_at >= $s AND started_at < $u",
                            {}, {"s": since, "u": until})[0]  # fmt: skip
    names = ("requests", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens",
             "total_tokens", "cost_usd", "errors")  # fmt: skip
    return {n: (float(v or 0) if n == "cost_usd" else int(v or 0)) for n, v in zip(names, row, strict=True)}


def _api_sums(totals: dict) -> dict:
    keys = ("requests", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens",
            "total_tokens", "cost_usd", "errors")  # fmt: skip
    return {k: totals[k] for k in keys}


def _assert_same(api: dict, raw: dict) -> None:
    assert {k: v for k, v in api.items() if k != "cost_usd"} == {
        k: v for k, v in raw.items() if k != "cost_usd"
    }
    assert api["cost_usd"] == pytest.approx(raw["cost_usd"], abs=1e-5)


async def test_rollups_equal_the_raw_sums_and_outlive_a_retention_cut(live_server):
    db = live_server.app.ctx.db
    spec = history.HistorySpec(rows=3000, days=40, account_ids=(1, 2, 3), api_key_ids=(7, 8), now=NOW)
    assert await db.run(history.fill, spec, False) == 3000
    keep_all = RequestLogUpkeep(db, retention_days=0, interval_s=60, clock=lambda: NOW)
    await keep_all.roll_up()
    everything = _raw_sums(db.orm, 0, NOW + 1)
    usage = await _get(live_server, "/api/usage", since=NOW - 41 * 86400, until=NOW, bucket="day")
    _assert_same(_api_sums(usage["totals"]), everything)
    by_hour = await _get(live_server, "/api/usage", since=NOW - 10 * 86400, until=NOW, bucket="hour")
    _assert_same(
        _api_sums(by_hour["totals"]), _raw_sums(db.orm, rollups.floor_to(NOW - 10 * 86400, "hour"), NOW + 1)
    )
    assert sum(point["requests"] for point in by_hour["series"]) == by_hour["totals"]["requests"]
    assert sum(row["requests"] for row in usage["by"]["account"]) == everything["requests"]
    assert sum(e["errors"] for e in usage["errors_by_code"]) == everything["errors"]

    # Retention of 30 days: raw rows before the cut go, the rollups keep every one of them.
    thirty = RequestLogUpkeep(db, retention_days=30, interval_s=60, clock=lambda: NOW)
    await thirty.run()
    cut = rollups.retention_cut(NOW, 30)
    assert _raw_sums(db.orm, 0, cut)["requests"] == 0
    assert _raw_sums(db.orm, cut, NOW + 1)["requests"] > 0
    await thirty.run()  # a later pass recomputes nothing before the cut
    after = await _get(live_server, "/api/usage", since=NOW - 41 * 86400, until=NOW, bucket="day")
    _assert_same(_api_sums(after["totals"]), everything)
    kept = await _get(live_server, "/api/usage", since=cut, until=NOW, bucket="hour")
    _assert_same(_api_sums(kept["totals"]), _raw_sums(db.orm, cut, NOW + 1))


async def test_breakdowns_keep_the_top_values_and_a_split_follows_them(live_server):
    db = live_server.app.ctx.db
    spec = history.HistorySpec(rows=2000, days=3, account_ids=(1, 2, 3, 4, 5), api_key_ids=(7, 8), now=NOW)
    await db.run(history.fill, spec, False)
    await RequestLogUpkeep(db, retention_days=0, interval_s=60, clock=lambda: NOW).roll_up()
    since = NOW - 4 * 86400
    everything = await _get(live_server, "/api/usage", since=since, until=NOW, bucket="day")
    accounts = everything["by"]["account"]
    requests = [row["requests"] for row in accounts]
    assert requests == sorted(requests, reverse=True)
    errors = [e["errors"] for e in everything["errors_by_code"]]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0
    assert sum(row["requests"] for row in everything["by"]["model"]) == everything["totals"]["requests"]

    top = await _get(live_server, "/api/usage", since=since, until=NOW, bucket="day", split="account", top=2)
    assert [row["id"] for row in top["by"]["account"]] == [row["id"] for row in accounts[:2]]
    assert len(top["by"]["model"]) == 2
    split_ids = {int(value) if value else None for value in top["split"]}
    assert split_ids == {row["id"] for row in accounts[:2]}
    for row in top["by"]["account"]:
        series = top["split"][str(row["id"]) if row["id"] is not None else ""]
        assert sum(point["requests"] for point in series) == row["requests"]


async def test_rows_arriving_after_a_pass_are_counted_by_the_next(live_server):
    db = live_server.app.ctx.db
    upkeep = RequestLogUpkeep(db, retention_days=30, interval_s=60, clock=lambda: NOW)
    await db.run(history.fill, history.HistorySpec(rows=500, days=3, now=NOW), False)
    await upkeep.roll_up()
    late = [_record(started_at=NOW - 2 * 86400 + 5, input_tokens=1000, latency_ms=700.0)]  # an old hour
    await db.run(insert_records, late)
    await upkeep.roll_up()
    usage = await _get(live_server, "/api/usage", since=NOW - 4 * 86400, until=NOW, bucket="day")
    _assert_same(_api_sums(usage["totals"]), _raw_sums(db.orm, 0, NOW + 1))


def _raw_by(orm_db, column: str, since: float, until: float) -> dict[str, tuple]:
    """Each value's requests, errors, total tokens and cost straight from the raw rows."""

    sums = "COUNT(*), SUM(CASE WHEN status >= 400 OR error_code <> '' THEN 1 ELSE 0 END), SUM(total_tokens), "
    with orm.db_session:
        rows = orm_db.select(f"SELECT {column}, {sums} SUM(COALESCE(cost_usd, 0)) FROM request_log "
                             f"WHERE started_at >= $s AND started_at < $u GROUP BY {column}",
                             {}, {"s": since, "u": until})  # fmt: skip
    return {"" if v is None else str(v): (int(n), int(e), int(t), float(c)) for v, n, e, t, c in rows}


def _api_by(usage: dict, facet: str, field: str) -> dict[str, tuple]:
    return {
        "" if row[field] is None else str(row[field]): (
            row["requests"],
            row["errors"],
            row["total_tokens"],
            pytest.approx(row["cost_usd"], abs=1e-5),
        )
        for row in usage["by"][facet]
    }


async def test_every_breakdown_row_equals_its_raw_sums_over_weeks_days_and_hours(live_server):
    """Ranges read whole weeks, the days around them and hours at the edges: each account's, key's and
    model's figures still equal its raw rows, also after a late row lands in a week already rolled."""
    db = live_server.app.ctx.db
    spec = history.HistorySpec(rows=4000, days=40, account_ids=(1, 2, 3, 4), api_key_ids=(7, 8), now=NOW)
    await db.run(history.fill, spec, False)
    upkeep = RequestLogUpkeep(db, retention_days=0, interval_s=60, clock=lambda: NOW)
    await upkeep.roll_up()
    ranges = [  # (since, until, bucket): 40 days by day; 10 days by hour with ragged edges; one week
        (NOW - 41 * 86400, NOW, "day"),
        (NOW - 10.3 * 86400, NOW - 0.2 * 86400, "hour"),
        (NOW - 8 * 86400, NOW - 86400, "day"),
    ]

    async def check() -> None:
        for since, until, bucket in ranges:
            usage = await _get(live_server, "/api/usage", since=since, until=until, bucket=bucket)
            start = rollups.floor_to(since, bucket)
            end = rollups.floor_to(until, bucket) + rollups.GRAINS[bucket]
            for facet, column, field in (("account", "account_id", "id"), ("key", "api_key_id", "id"),
                                         ("model", "model", "model")):  # fmt: skip
                assert _api_by(usage, facet, field) == _raw_by(db.orm, column, start, end), (facet, bucket)

    await check()
    late = [_record(started_at=NOW - 20 * 86400 + 5, account_id=2, api_key_id=8, input_tokens=777)]
    await db.run(insert_records, late)
    await upkeep.roll_up()
    await check()


def test_a_range_is_read_as_whole_weeks_then_days_then_hours():
    from server.usage.reports import cover

    week, day, hour = rollups.WEEK, rollups.DAY, rollups.HOUR
    base = 2900 * week  # a week's start
    assert cover(base + 3 * day, base + 3 * week + day, "day") == [
        ("day", base + 3 * day, base + week),
        ("week", base + week, base + 3 * week),
        ("day", base + 3 * week, base + 3 * week + day),
    ]
    assert cover(base + 5 * hour, base + day + 7 * hour, "hour") == [
        ("hour", base + 5 * hour, base + day + 7 * hour)
    ]
    assert cover(base + 5 * hour, base + 2 * day + 7 * hour, "hour") == [
        ("hour", base + 5 * hour, base + day),
        ("day", base + day, base + 2 * day),
        ("hour", base + 2 * day, base + 2 * day + 7 * hour),
    ]
    rng = random.Random(20)
    for _ in range(2000):
        grain = rng.choice(("hour", "day"))
        step = rollups.GRAINS[grain]
        start = base + rng.randrange(0, 60 * day) // step * step
        end = start + rng.randrange(1, 40 * day // step + 2) * step
        pieces = cover(start, end, grain)
        assert pieces[0][1] == start and pieces[-1][2] == end
        assert all(a[2] == b[1] for a, b in itertools.pairwise(pieces))  # contiguous, no overlap
        for piece_grain, lo, hi in pieces:
            size = rollups.GRAINS[piece_grain]
            assert lo < hi and lo % size == 0 and hi % size == 0
        assert [g for g, _, _ in pieces].count("week") <= 1 and len(pieces) <= 5


def test_upgrading_sums_the_weeks_of_the_days_already_rolled(blank_database_url, tmp_path, monkeypatch):
    """Days rolled before weeks existed (their raw rows may be gone) get their weeks at the upgrade."""
    steps = discover()
    monkeypatch.setattr(migrator, "discover", lambda: [m for m in steps if m.version != 20])
    migrator.migrate(blank_database_url)
    db = Database(make_settings(tmp_path / "data", blank_database_url))
    db.open()
    try:
        spec = history.HistorySpec(rows=1500, days=25, account_ids=(1, 2), api_key_ids=(7,), now=NOW)
        history.fill(db.orm, spec, roll_up=False)
        rollups.roll_up_now(db.orm, NOW)
        weeks = _week_rows(db.orm)
        assert len({row[0] for row in weeks}) >= 3
        with orm.db_session:
            db.orm.execute("DELETE FROM usage_rollup WHERE grain = 'week'")  # as an older version left it
        monkeypatch.setattr(migrator, "discover", lambda: steps)
        assert migrator.migrate(blank_database_url).applied == 1
        again = _week_rows(db.orm)
        assert [row[:3] for row in again] == [row[:3] for row in weeks]  # (week, facet, value)
        for row, before in zip(again, weeks, strict=True):
            assert row[3:] == pytest.approx(before[3:])  # sums of floats may end in another last digit
    finally:
        db.close()


@orm.db_session
def _week_rows(orm_db) -> list[tuple]:
    measures = ", ".join(rollups.MEASURES)
    return sorted(
        tuple(row)
        for row in orm_db.select(
            f"SELECT bucket_start, facet, value, {measures} FROM usage_rollup WHERE grain = 'week'"
        )
    )


async def test_percentiles_from_the_histograms_are_close_to_the_raw_ones(live_server):
    db = live_server.app.ctx.db
    latencies = [100.0 + 10 * i for i in range(200)]  # 100 .. 2090 ms: median 1095
    await db.run(insert_records, [_record(started_at=NOW - 600 - i, latency_ms=v, ttft_ms=v / 2)
                                  for i, v in enumerate(latencies)])  # fmt: skip
    await RequestLogUpkeep(db, 30, 60, clock=lambda: NOW).roll_up()
    usage = await _get(live_server, "/api/usage", since=NOW - 3600, until=NOW)
    assert usage["totals"]["latency_ms"]["p50"] == pytest.approx(1095, rel=0.1)
    assert usage["totals"]["latency_ms"]["p90"] == pytest.approx(1895, rel=0.1)
    assert usage["totals"]["ttft_ms"]["p50"] == pytest.approx(547, rel=0.1)


def _record(**fields) -> FinishedRequest:
    tokens = {k: fields.pop(k) for k in ("input_tokens", "output_tokens") if k in fields}
    usage = TokenUsage(tokens.get("input_tokens", 10), 0, tokens.get("output_tokens", 5), 0,
                       tokens.get("input_tokens", 10) + tokens.get("output_tokens", 5))  # fmt: skip
    base = {"request_id": f"req_{time.monotonic_ns()}", "route": "/v1/responses", "transport": "http",
            "status": 200, "model": "gpt-5.4", "usage": usage}  # fmt: skip
    return FinishedRequest(**{**base, **fields})


LOGS = [
    _record(request_id="req_a", started_at=NOW - 50, account_id=1, api_key_id=7, model="gpt-5.4"),
    _record(
        request_id="req_b",
        started_at=NOW - 40,
        account_id=2,
        api_key_id=8,
        model="gpt-5.5",
        status=429,
        error_code="usage_limit_reached",
        session_key_hash="s1",
        routing="sticky",
    ),
    _record(
        request_id="req_c",
        started_at=NOW - 40,
        account_id=1,
        api_key_id=7,
        transport="websocket",
        upstream_transport="websocket",
        route="/backend-api/codex/responses",
        session_key_hash="s1",
        routing="sticky_moved:cooldown",
    ),
    _record(
        request_id="req_d",
        started_at=NOW - 30,
        account_id=2,
        status=502,
        error_code="upstream_error",
        session_key_hash="s1",
        routing="sticky_moved:exhausted",
    ),
    _record(
        request_id="req_e",
        started_at=NOW - 20,
        account_id=None,
        api_key_id=8,
        status=503,
        error_code="no_accounts",
        model="=cmd",
    ),
]


@pytest.fixture
async def logged(live_server):
    await live_server.app.ctx.db.run(insert_records, LOGS)
    return live_server


FILTERS = [
    ({}, ["req_e", "req_d", "req_c", "req_b", "req_a"]),
    ({"since": NOW - 40, "until": NOW - 25}, ["req_d", "req_c", "req_b"]),
    ({"account_id": 1}, ["req_c", "req_a"]),
    ({"api_key_id": 8}, ["req_e", "req_b"]),
    ({"model": "gpt-5.5"}, ["req_b"]),
    ({"status": "429"}, ["req_b"]),
    ({"status": "5xx"}, ["req_e", "req_d"]),
    ({"status": "error"}, ["req_e", "req_d", "req_b"]),
    ({"status": "ok"}, ["req_c", "req_a"]),
    ({"error_code": "upstream_error"}, ["req_d"]),
    ({"transport": "websocket"}, ["req_c"]),
    ({"upstream_transport": "websocket"}, ["req_c"]),
    ({"route": "/backend-api/codex/responses"}, ["req_c"]),
    ({"session": "s1"}, ["req_d", "req_c", "req_b"]),
    ({"api_key_id": 8, "status": "error"}, ["req_e", "req_b"]),
]


async def test_each_filter_selects_its_rows_newest_first(logged):
    for params, expected in FILTERS:
        found = await _get(logged, "/api/request-logs", **params)
        assert [row["request_id"] for row in found["request_logs"]] == expected, params
        assert found["next_cursor"] is None


async def test_failed_rows_are_read_from_their_own_index_among_many_successes(logged):
    """The Overview's recent failures walked every row of the week to find them (45 ms for a week of
    60,000 successes on SQLite): each filter that selects failed rows only reads the failed rows' own index
    (migration 22), on both databases, and still finds what it found."""
    db = logged.app.ctx.db
    successes = [_record(request_id=f"ok_{i}", started_at=NOW - 60 + i / 100) for i in range(3000)]
    await db.run(insert_records, successes)
    await db.run(_analyze)
    for params, expected in ((p, e) for p, e in FILTERS if p in FAILURE_FILTERS):
        found = await _get(logged, "/api/request-logs", since=NOW - 7 * 86400, **params)
        assert [row["request_id"] for row in found["request_logs"]] == expected, params
        plan = await db.run(_plan, browse.LogFilter(since=NOW - 7 * 86400, **params))
        assert "request_log_failed" in plan, (params, plan)
    assert "request_log_failed" not in await db.run(_plan, browse.LogFilter(status="200"))


FAILURE_FILTERS = [
    {"status": "error"},
    {"status": "5xx"},
    {"status": "429"},
    {"error_code": "upstream_error"},
]


@orm.db_session
def _analyze(orm_db) -> None:
    orm_db.execute("ANALYZE request_log")


@orm.db_session
def _plan(orm_db, spec: browse.LogFilter) -> str:
    sql, params = browse.page_query(spec, 9)
    explain = "EXPLAIN QUERY PLAN " if orm_db.provider.dialect == "SQLite" else "EXPLAIN "
    return "\n".join(str(row) for row in orm_db.execute(explain + sql, {}, params).fetchall())


def test_the_failed_rows_index_states_the_predicate_the_log_pages_use():
    assert failures_migration.FAILED == browse.FAILED


async def test_the_cursor_walks_every_row_once_even_with_equal_times(logged):
    seen, cursor = [], None
    while True:
        found = await _get(logged, "/api/request-logs", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [row["request_id"] for row in found["request_logs"]]
        cursor = found["next_cursor"]
        if cursor is None:
            break
        # A row written meanwhile (newer) does not shift the pages being read.
        await logged.app.ctx.db.run(
            insert_records, [_record(started_at=NOW, request_id=f"req_new{len(seen)}")]
        )
    assert seen == ["req_e", "req_d", "req_c", "req_b", "req_a"]


async def test_one_row_has_its_detail_and_an_unknown_one_is_404(logged):
    (row,) = (await _get(logged, "/api/request-logs", session="s1", status="502"))["request_logs"]
    detail = await _get(logged, f"/api/request-logs/{row['id']}")
    assert detail["request_id"] == "req_d"
    assert detail["moved"] is True and detail["move_reason"] == "exhausted"
    assert detail["session_turn"] == 3
    async with aiohttp.ClientSession() as session:
        async with session.get(logged.url + "/api/request-logs/999999") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "not_found"


async def test_the_csv_streams_every_filtered_row_and_defuses_formulas(logged):
    text = await _get(logged, "/api/request-logs.csv", status="error")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["request_id"] for r in table] == ["req_e", "req_d", "req_b"]
    assert table[0]["model"] == "'=cmd"
    big = [_record(started_at=NOW - 1000 - i, request_id=f"req_bulk{i}") for i in range(2500)]
    await logged.app.ctx.db.run(insert_records, big)
    everything = list(csv.DictReader(io.StringIO(await _get(logged, "/api/request-logs.csv"))))
    assert len(everything) == 2505 and len({r["id"] for r in everything}) == 2505


async def test_sessions_show_their_turns_accounts_and_moves_with_reasons(logged):
    await RequestLogUpkeep(logged.app.ctx.db, 30, 60, clock=lambda: NOW).roll_up()
    found = await _get(logged, "/api/sessions", since=NOW - 3600, until=NOW + 1)
    (session,) = found["sessions"]
    assert session["session"] == "s1" and session["turns"] == 3 and session["accounts"] == 2
    assert session["moves"] == 2 and session["errors"] == 2
    detail = await _get(logged, "/api/sessions/s1")
    assert [(m["from_account_id"], m["to_account_id"], m["reason"]) for m in detail["moves"]] == [
        (2, 1, "cooldown"),
        (1, 2, "exhausted"),
    ]


async def test_bad_parameters_are_refused_with_the_error_shape(logged):
    async with aiohttp.ClientSession() as session:
        for query in ("status=abc", "cursor=nope", "limit=0", "since=x"):
            async with session.get(logged.url + "/api/request-logs?" + query) as response:
                assert response.status == 400, query
                assert "error" in await response.json()
        async with session.get(logged.url + "/api/usage?bucket=week") as response:
            assert response.status == 400


async def test_a_failed_over_request_logs_who_failed_why_and_the_clients_user_agent(proxy):
    from tests.support.proxy import codex_body

    [bad] = await proxy.add_accounts("acc_ua_bad", failure_rate=1.0, failure_status=502)
    await proxy.add_accounts("acc_ua_good")
    for i in range(12):  # enough sessions that some hash to the failing account first
        answer = await proxy.post(
            "/backend-api/codex/responses",
            codex_body("hi"),
            {"session-id": f"ua-{i}", "user-agent": "probe/1.0"},
        )
        assert answer.status == 200
    logs = await proxy.request_logs(12)
    assert {row["user_agent"] for row in logs} == {"probe/1.0"}
    moved = [row for row in logs if row["attempts"] == 2]
    assert moved and all(row["failovers"].startswith(f"{bad['id']}:") for row in moved)
    assert all(row["failovers"] == "" for row in logs if row["attempts"] == 1)
