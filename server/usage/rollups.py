"""Hourly, daily and weekly rollups of the request log, kept by one lease-holding job; the usage API reads
them.

Owns `usage_rollup` and `usage_rollup_state`. An hour's rollup is recomputed whole from the raw rows
whenever rows landed in it since the previous pass (found by id), so it always equals the raw sums; a day
is the sum of its hours, a week (seven days from a multiple of 7 x 86400, so a Thursday) the sum of its
days. Weeks only serve range totals: a month of 500 accounts is 15,000 daily rows to rank, about 3,500
weekly and daily ones. Hours older than the retention cut are never recomputed: their rollups outlive
the raw rows, and the retention pass deletes only rows a finished pass has already counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pony import orm
from psycopg2.extras import execute_values

from server.usage.histogram import BUCKET_COUNT, LATENCY_COLUMNS, TTFT_COLUMNS, bucket_of

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
GRAINS = {"hour": HOUR, "day": DAY, "week": WEEK}
# Each raw row counts once in every facet: the whole pool, and one cell per account, key, model, route,
# transport and (when it failed) error code. Breakdowns by one dimension need no other; a cell per
# combination of all of them made nearly as many rollup rows as raw ones.
FACETS = ("all", "account", "key", "model", "route", "transport", "error_code")
DIMENSIONS = ("facet", "value")
SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "unpriced_requests",
    "latency_sum_ms",
    "ttft_count",
    "ttft_sum_ms",
)
MEASURES = (*SUMS, *LATENCY_COLUMNS, *TTFT_COLUMNS)
_COLUMNS = ("grain", "bucket_start", *DIMENSIONS, *MEASURES)
_COST, _LATENCY, _TTFT_SUM = SUMS.index("cost_usd"), SUMS.index("latency_sum_ms"), SUMS.index("ttft_sum_ms")
_RAW = (
    "SELECT account_id, api_key_id, model, route, transport, status, error_code, input_tokens, "
    "cached_input_tokens, output_tokens, reasoning_tokens, total_tokens, cost_usd, latency_ms, ttft_ms "
    "FROM request_log WHERE started_at >= $start AND started_at < $end"
)
_LAST, _OLDER = "scanned_last", "scanned_older"


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """What one pass will do: the hours to recompute and the watermark to record when done."""

    hours: tuple[int, ...]
    days: tuple[int, ...]
    weeks: tuple[int, ...]
    watermark: int  # the highest request_log id seen when the pass began
    previous: int  # the watermark of the pass before
    scan_from: int = 0  # rows above this id were looked at


def retention_cut(now: float, retention_days: float) -> int:
    """The first hour whose raw rows are kept (and whose rollups may still be recomputed); 0 keeps all."""
    if retention_days <= 0:
        return 0
    return int((now - retention_days * DAY) // HOUR) * HOUR


def failed(status: int, error_code: str) -> bool:
    return status >= 400 or bool(error_code)


def error_label(status: int, error_code: str) -> str:
    """The code a failed request is counted under: its error code, else its HTTP status."""
    if error_code:
        return error_code
    return str(status) if status >= 400 else ""


@orm.db_session
def plan(orm_db: orm.Database, now: float, retention_days: float) -> RollupPlan:
    """Hours touched by rows added since the pass before last (so a batch still committing while the
    last pass read is caught now), plus the current and previous hour."""
    state = dict(orm_db.select("SELECT name, value FROM usage_rollup_state"))
    watermark = int(orm_db.select("SELECT COALESCE(MAX(id), 0) FROM request_log")[0])
    scan_from = int(state.get(_OLDER, 0)) if _LAST in state else 0  # first pass ever: everything is new
    hour_of = _hour_expression(orm_db)
    touched = orm_db.select(
        f"SELECT DISTINCT {hour_of} FROM request_log WHERE id > $scan_from", {}, {"scan_from": scan_from}
    )
    current = int(now // HOUR) * HOUR
    hours = {int(h) * HOUR for h in touched} | {current, current - HOUR}
    cut = retention_cut(now, retention_days)
    kept = tuple(sorted(h for h in hours if h >= cut))
    days = tuple(sorted({h // DAY * DAY for h in kept}))
    weeks = tuple(sorted({d // WEEK * WEEK for d in days}))
    return RollupPlan(kept, days, weeks, watermark, int(state.get(_LAST, watermark)), scan_from)


def _hour_expression(orm_db: orm.Database) -> str:
    if orm_db.provider.dialect == "PostgreSQL":
        return "CAST(FLOOR(started_at / 3600) AS BIGINT)"
    return "CAST(started_at / 3600 AS INTEGER)"  # started_at is positive: truncation is floor


@orm.db_session
def roll_hour(orm_db: orm.Database, hour: int) -> int:
    """Recompute one hour's rollup rows from the raw rows; the number of rows written."""
    cells: dict[tuple, list] = {}
    cursor = orm_db.execute(_RAW, {}, {"start": float(hour), "end": float(hour + HOUR)})
    for row in iter(lambda: cursor.fetchmany(5000), []):
        for r in row:
            _add(cells, r)
    orm_db.execute(
        "DELETE FROM usage_rollup WHERE grain = 'hour' AND bucket_start = $hour", {}, {"hour": hour}
    )
    _insert(orm_db, [("hour", hour, *key, *values) for key, values in cells.items()])
    return len(cells)


def _add(cells: dict[tuple, list], r: tuple) -> None:
    (
        account_id,
        key_id,
        model,
        route,
        transport,
        status,
        code,
        inp,
        cached,
        out,
        reasoning,
        total,
        cost,
        lat,
        ttft,
    ) = r
    is_failed = failed(status, code)
    lat_bucket = len(SUMS) + bucket_of(lat)
    ttft_bucket = None if ttft is None else len(SUMS) + BUCKET_COUNT + bucket_of(ttft)
    keys = [
        ("all", ""),
        ("account", "" if account_id is None else str(account_id)),
        ("key", "" if key_id is None else str(key_id)),
        ("model", model),
        ("route", route),
        ("transport", transport),
    ]
    if is_failed:
        keys.append(("error_code", error_label(status, code)))
    for key in keys:
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0] * len(MEASURES)
            cell[_COST] = cell[_LATENCY] = cell[_TTFT_SUM] = 0.0
        cell[0] += 1
        cell[1] += is_failed
        cell[2] += inp
        cell[3] += cached
        cell[4] += out
        cell[5] += reasoning
        cell[6] += total
        if cost is None:
            cell[8] += total > 0
        else:
            cell[7] += cost
        cell[9] += lat
        cell[lat_bucket] += 1
        if ttft_bucket is not None:
            cell[10] += 1
            cell[11] += ttft
            cell[ttft_bucket] += 1


def _insert(orm_db: orm.Database, rows: list[tuple]) -> None:
    if not rows:
        return
    cursor = orm_db.get_connection().cursor()
    names = ", ".join(_COLUMNS)
    if orm_db.provider.dialect == "PostgreSQL":
        execute_values(cursor, f"INSERT INTO usage_rollup ({names}) VALUES %s", rows, page_size=1000)
    else:
        marks = ", ".join("?" * len(_COLUMNS))
        cursor.executemany(f"INSERT INTO usage_rollup ({names}) VALUES ({marks})", rows)


@orm.db_session
def roll_day(orm_db: orm.Database, day: int) -> None:
    """A day's rollup is the sum of its hours' rollups (never of raw rows, which may be gone)."""
    _sum_into(orm_db, "day", day, DAY, "hour")


@orm.db_session
def roll_week(orm_db: orm.Database, week: int) -> None:
    """A week's rollup is the sum of its days' (roll its days first)."""
    _sum_into(orm_db, "week", week, WEEK, "day")


def _sum_into(orm_db: orm.Database, grain: str, start: int, length: int, parts: str) -> None:
    dims = ", ".join(DIMENSIONS)
    sums = ", ".join(f"SUM({m})" for m in MEASURES)
    where = "bucket_start >= $start AND bucket_start < $end"
    span = {"start": start, "end": start + length}
    orm_db.execute(f"DELETE FROM usage_rollup WHERE grain = '{grain}' AND {where}", {}, span)
    orm_db.execute(
        f"INSERT INTO usage_rollup ({', '.join(_COLUMNS)}) SELECT '{grain}', $start, {dims}, {sums} "
        f"FROM usage_rollup WHERE grain = '{parts}' AND {where} GROUP BY {dims}",
        {},
        span,
    )


_SESSION_SUMS = (
    "SELECT session_key_hash, MIN(started_at), MAX(started_at), COUNT(*), SUM(total_tokens), "
    "COUNT(DISTINCT account_id), SUM(CASE WHEN routing LIKE 'sticky_moved:%' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN status >= 400 OR error_code <> '' THEN 1 ELSE 0 END), COALESCE(SUM(cost_usd), 0) "
    "FROM request_log WHERE session_key_hash IN ({marks}) GROUP BY session_key_hash"
)
SESSION_BATCH = 500


@orm.db_session
def touched_sessions(orm_db: orm.Database, scan_from: int) -> list[str]:
    rows = orm_db.select(
        "SELECT DISTINCT session_key_hash FROM request_log WHERE id > $scan_from AND session_key_hash <> ''",
        {},
        {"scan_from": scan_from},
    )
    return [str(s) for s in rows]


@orm.db_session
def roll_sessions(orm_db: orm.Database, sessions: list[str]) -> None:
    """Recompute these conversations' rows from their raw rows (an index probe per session)."""
    if not sessions:
        return
    names = {f"s{i}": s for i, s in enumerate(sessions)}
    marks = ", ".join(f"${n}" for n in names)
    rows = orm_db.select(_SESSION_SUMS.format(marks=marks), {}, names)
    orm_db.execute(f"DELETE FROM session_rollup WHERE session IN ({marks})", {}, names)
    cursor = orm_db.get_connection().cursor()
    values = [
        (s, float(a), float(b), int(n), int(t or 0), int(c), int(m), int(e), float(cost))
        for s, a, b, n, t, c, m, e, cost in rows
    ]
    if not values:
        return
    sql = (
        "INSERT INTO session_rollup (session, first_seen, last_seen, turns, total_tokens, accounts, moves, "
        "errors, cost_usd) VALUES "
    )
    if orm_db.provider.dialect == "PostgreSQL":
        execute_values(cursor, sql + "%s", values, page_size=1000)
    else:
        cursor.executemany(sql + "(?, ?, ?, ?, ?, ?, ?, ?, ?)", values)


@orm.db_session
def finish(orm_db: orm.Database, done: RollupPlan) -> None:
    """Record the pass: the next one scans from this pass's starting point (one pass of overlap)."""
    for name, value in ((_OLDER, done.previous), (_LAST, done.watermark)):
        orm_db.execute(
            "INSERT INTO usage_rollup_state (name, value) VALUES ($name, $value) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            {},
            {"name": name, "value": value},
        )


@orm.db_session
def counted_up_to(orm_db: orm.Database) -> int:
    """Every request_log row with an id at or below this is inside a finished rollup pass."""
    rows = orm_db.select(f"SELECT value FROM usage_rollup_state WHERE name = '{_OLDER}'")
    return int(rows[0]) if rows else 0


@orm.db_session
def roll_up_now(orm_db: orm.Database, now: float, retention_days: float = 0) -> RollupPlan:
    """One whole pass in one transaction (the history generator, benchmarks); the job does the same
    step by step, a transaction per hour, so the request-log writer never waits long."""
    todo = plan(orm_db, now, retention_days)
    for hour in todo.hours:
        roll_hour(orm_db, hour)
    for day in todo.days:
        roll_day(orm_db, day)
    for week in todo.weeks:
        roll_week(orm_db, week)
    sessions = touched_sessions(orm_db, todo.scan_from)
    for start in range(0, len(sessions), SESSION_BATCH):
        roll_sessions(orm_db, sessions[start : start + SESSION_BATCH])
    finish(orm_db, todo)
    return todo


def floor_to(value: float, grain: str) -> int:
    step = GRAINS[grain]
    return int(math.floor(value / step)) * step
