"""The usage API's answers, read from the rollups (never a scan of the raw log): totals, a time series,
errors by code and breakdowns by account, key, model and route, with latency and TTFT percentiles."""

from __future__ import annotations

from dataclasses import dataclass

from pony import orm

from server.usage.histogram import LATENCY_COLUMNS, TTFT_COLUMNS, summary
from server.usage.rollups import DAY, GRAINS, floor_to

TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
_BASIC = ("requests", "errors", *TOKENS, "cost_usd", "unpriced_requests", "latency_sum_ms")
BREAKDOWNS = ("account", "key", "model", "route", "transport")
MAX_BUCKETS = 24 * 400


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: float
    until: float
    bucket: str = "hour"  # hour | day
    top: int = 20  # rows per breakdown
    split: str = ""  # a breakdown whose values also get a series each (top ones only)


@orm.db_session
def usage(orm_db: orm.Database, spec: UsageQuery) -> dict:
    grain = spec.bucket
    start = floor_to(spec.since, grain)
    end = floor_to(spec.until, grain) + (GRAINS[grain] if spec.until % GRAINS[grain] else 0)
    where = "grain = $grain AND facet = $facet AND bucket_start >= $start AND bucket_start < $end"
    params = {"grain": grain, "facet": "all", "start": start, "end": end}
    histograms = (*LATENCY_COLUMNS, *TTFT_COLUMNS)
    sums = ", ".join(f"COALESCE(SUM({m}), 0)" for m in (*_BASIC, *histograms))

    # Totals and breakdowns need no time buckets: whole days come from the daily rows (24x fewer), only
    # the partial days at the edges of an hourly range from hourly rows.
    day_start, day_end = -(-start // DAY) * DAY, end // DAY * DAY
    # (A UNION ALL of three index ranges: PostgreSQL scanned the whole table for the same ORed ranges.)
    if grain == "hour" and day_start < day_end:
        source = (
            "(SELECT * FROM usage_rollup WHERE facet = $facet AND grain = 'day' "
            "AND bucket_start >= $day_start AND bucket_start < $day_end "
            "UNION ALL SELECT * FROM usage_rollup WHERE facet = $facet AND grain = 'hour' "
            "AND bucket_start >= $start AND bucket_start < $day_start "
            "UNION ALL SELECT * FROM usage_rollup WHERE facet = $facet AND grain = 'hour' "
            "AND bucket_start >= $day_end AND bucket_start < $end) AS spans"
        )
        params.update(day_start=day_start, day_end=day_end)
    else:
        source = f"(SELECT * FROM usage_rollup WHERE {where}) AS spans"
    (total,) = orm_db.select(f"SELECT {sums} FROM {source}", {}, params)
    series = orm_db.select(
        f"SELECT bucket_start, {sums} FROM usage_rollup WHERE {where} "
        "GROUP BY bucket_start ORDER BY bucket_start",
        {},
        params,
    )
    codes = orm_db.select(
        f"SELECT value, SUM(errors) FROM {source} GROUP BY value ORDER BY SUM(errors) DESC",
        {},
        {**params, "facet": "error_code"},
    )
    by = {}
    for name in BREAKDOWNS:
        rows = orm_db.select(
            f"SELECT value, {sums} FROM {source} GROUP BY value "
            f"ORDER BY SUM(requests) DESC LIMIT {int(spec.top)}",
            {},
            {**params, "facet": name},
        )
        by[name] = [{"value": row[0], **_basic(row[1:]), **_percentiles(row[1:])} for row in rows]
    split = {}
    if spec.split in BREAKDOWNS:
        wanted = [row["value"] for row in by[spec.split][:8]]
        rows = orm_db.select(
            f"SELECT value, bucket_start, {', '.join(f'SUM({m})' for m in _BASIC)} FROM usage_rollup "
            f"WHERE {where} GROUP BY value, bucket_start ORDER BY bucket_start",
            {},
            {**params, "facet": spec.split},
        )
        for value, t, *rest in rows:
            if value in wanted:
                split.setdefault(value, []).append({"t": int(t), **_basic(rest)})
    _name_accounts_and_keys(orm_db, by)
    return {
        "since": start,
        "until": end,
        "bucket": grain,
        "totals": {**_basic(total), **_percentiles(total)},
        "series": [{"t": int(row[0]), **_basic(row[1:]), **_percentiles(row[1:])} for row in series],
        "errors_by_code": [{"code": code, "errors": int(n)} for code, n in codes],
        "by": by,
        "split": split,
    }


def _basic(row) -> dict:
    values = dict(zip(_BASIC, row, strict=False))
    out = {m: int(values[m]) for m in _BASIC if m not in ("cost_usd", "latency_sum_ms")}
    out["cost_usd"] = round(float(values["cost_usd"]), 6)
    out["error_rate"] = round(out["errors"] / out["requests"], 4) if out["requests"] else 0.0
    out["latency_avg_ms"] = (
        round(float(values["latency_sum_ms"]) / out["requests"], 1) if out["requests"] else None
    )
    return out


def _percentiles(row) -> dict:
    counts = [int(v) for v in row[len(_BASIC) :]]
    half = len(LATENCY_COLUMNS)
    return {"latency_ms": summary(counts[:half]), "ttft_ms": summary(counts[half:])}


def _name_accounts_and_keys(orm_db: orm.Database, by: dict) -> None:
    accounts = {
        str(i): (label or email or f"account {i}")
        for i, email, label in orm_db.select("SELECT id, email, label FROM account")
    }
    keys = {str(i): name for i, name in orm_db.select("SELECT id, name FROM api_key")}
    for facet, names, none in (("account", accounts, "no account"), ("key", keys, "no key")):
        for row in by[facet]:
            value = row.pop("value")
            row["id"] = int(value) if value else None
            row["name"] = names.get(value, f"{facet} {value}") if value else none
    for facet in ("model", "route", "transport"):
        for row in by[facet]:
            row[facet] = row.pop("value")
