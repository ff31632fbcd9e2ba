"""The usage API's answers, read from the rollups (never a scan of the raw log): totals, a time series,
errors by code and breakdowns by account, key, model and route, with latency and TTFT percentiles."""

from __future__ import annotations

from dataclasses import dataclass

from pony import orm

from server.usage.histogram import LATENCY_COLUMNS, TTFT_COLUMNS, summary
from server.usage.rollups import GRAINS, floor_to

TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
_BASIC = ("requests", "errors", *TOKENS, "cost_usd", "unpriced_requests", "latency_sum_ms")
BREAKDOWNS = {"account": "account_id", "key": "api_key_id", "model": "model", "route": "route"}
MAX_BUCKETS = 24 * 400


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: float
    until: float
    bucket: str = "hour"  # hour | day
    top: int = 20  # rows per breakdown


@orm.db_session
def usage(orm_db: orm.Database, spec: UsageQuery) -> dict:
    grain = spec.bucket
    start = floor_to(spec.since, grain)
    end = floor_to(spec.until, grain) + (GRAINS[grain] if spec.until % GRAINS[grain] else 0)
    where = "grain = $grain AND bucket_start >= $start AND bucket_start < $end"
    params = {"grain": grain, "start": start, "end": end}
    histograms = (*LATENCY_COLUMNS, *TTFT_COLUMNS)
    sums = ", ".join(f"COALESCE(SUM({m}), 0)" for m in (*_BASIC, *histograms))

    (total,) = orm_db.select(f"SELECT {sums} FROM usage_rollup WHERE {where}", {}, params)
    series = orm_db.select(
        f"SELECT bucket_start, {sums} FROM usage_rollup WHERE {where} "
        "GROUP BY bucket_start ORDER BY bucket_start",
        {},
        params,
    )
    codes = orm_db.select(
        f"SELECT error_code, SUM(errors) FROM usage_rollup WHERE {where} AND errors > 0 "
        "GROUP BY error_code ORDER BY SUM(errors) DESC",
        {},
        params,
    )
    basic = ", ".join(f"SUM({m})" for m in _BASIC)
    by = {}
    for name, column in BREAKDOWNS.items():
        rows = orm_db.select(
            f"SELECT {column}, {basic} FROM usage_rollup WHERE {where} GROUP BY {column} "
            f"ORDER BY SUM(requests) DESC LIMIT {int(spec.top)}",
            {},
            params,
        )
        by[name] = [{name if name in ("model", "route") else "id": row[0], **_basic(row[1:])} for row in rows]
    _name_accounts_and_keys(orm_db, by)
    return {
        "since": start,
        "until": end,
        "bucket": grain,
        "totals": {**_basic(total), **_percentiles(total)},
        "series": [{"t": int(row[0]), **_basic(row[1:]), **_percentiles(row[1:])} for row in series],
        "errors_by_code": [{"code": code, "errors": int(n)} for code, n in codes],
        "by": by,
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
        int(i): (label or email or f"account {i}")
        for i, email, label in orm_db.select("SELECT id, email, label FROM account")
    }
    keys = {int(i): name for i, name in orm_db.select("SELECT id, name FROM api_key")}
    for row in by["account"]:
        row["id"] = int(row["id"]) or None
        row["name"] = accounts.get(
            row["id"] or 0, "no account" if row["id"] is None else f"account {row['id']}"
        )
    for row in by["key"]:
        row["id"] = int(row["id"]) or None
        row["name"] = keys.get(row["id"] or 0, "no key" if row["id"] is None else f"key {row['id']}")
