"""The dashboard's history API: request-log pages and filters with a stable cursor, one row, the CSV,
usage from the rollups (equal to the raw rows' sums, also across a retention cut) and sessions."""

from __future__ import annotations

import csv
import io
import time

import aiohttp
import pytest

from server.usage import history, rollups
from server.usage.records import RequestRecord
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
    from pony import orm

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


def _record(**fields) -> RequestRecord:
    tokens = {k: fields.pop(k) for k in ("input_tokens", "output_tokens") if k in fields}
    usage = TokenUsage(tokens.get("input_tokens", 10), 0, tokens.get("output_tokens", 5), 0,
                       tokens.get("input_tokens", 10) + tokens.get("output_tokens", 5))  # fmt: skip
    base = {"request_id": f"req_{time.monotonic_ns()}", "route": "/v1/responses", "transport": "http",
            "status": 200, "model": "gpt-5.4", "usage": usage}  # fmt: skip
    return RequestRecord(**{**base, **fields})


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
