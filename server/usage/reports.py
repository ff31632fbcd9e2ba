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
    # Every breakdown and the error codes ranked in one pass over the range by their request counts
    # alone, then every figure of the top ones only: a pool of 500 accounts makes 15,000 account-days a
    # month, and summing a dozen columns of each (let alone the ~60 histogram columns) took 30-200 ms.
    facets = ", ".join(f"'{name}'" for name in (*BREAKDOWNS, "error_code"))
    spans = source.replace("facet = $facet", f"facet IN ({facets})")
    ranked = orm_db.select(
        f"SELECT facet, value, COALESCE(SUM(requests), 0), COALESCE(SUM(errors), 0) FROM {spans} "
        "GROUP BY facet, value",
        {},
        params,
    )
    tops: dict[str, list[str]] = {name: [] for name in BREAKDOWNS}
    codes = []
    for facet, value, _, errors in sorted(ranked, key=lambda row: -row[2]):  # most requests first
        if facet == "error_code":
            codes.append((value, errors))
        elif len(tops[facet]) < spec.top:
            tops[facet].append(value)
    codes.sort(key=lambda code: -code[1])
    shown = {
        f"v{i}": v for i, v in enumerate(sorted({value for values in tops.values() for value in values}))
    }
    figures_of = {}
    if shown:
        marks = ", ".join(f"${name}" for name in shown)
        # The index holds `value`: rows of other values are passed over without being read.
        for facet, value, *figures in orm_db.select(
            f"SELECT facet, value, {sums} FROM {spans} WHERE value IN ({marks}) GROUP BY facet, value",
            {},
            {**params, **shown},
        ):
            figures_of[(facet, value)] = figures
    by = {
        name: [
            {"value": value, **_basic(figures_of[(name, value)]), **_percentiles(figures_of[(name, value)])}
            for value in values
        ]
        for name, values in tops.items()
    }
    split = {}
    if spec.split in BREAKDOWNS and by[spec.split]:
        wanted = {f"v{i}": row["value"] for i, row in enumerate(by[spec.split][:8])}
        rows = orm_db.select(
            f"SELECT value, bucket_start, {', '.join(f'SUM({m})' for m in _BASIC)} FROM usage_rollup "
            f"WHERE {where} AND value IN ({', '.join(f'${name}' for name in wanted)}) "
            "GROUP BY value, bucket_start ORDER BY bucket_start",
            {},
            {**params, **wanted, "facet": spec.split},
        )
        for value, t, *rest in rows:
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
    """Names for the accounts and keys shown, read for those alone (a pool has hundreds of accounts)."""
    accounts, keys = {}, {}
    wanted = {
        facet: sorted({int(row["value"]) for row in by[facet] if row["value"]})
        for facet in ("account", "key")
    }
    if wanted["account"]:
        accounts = {
            str(i): (label or email or f"account {i}")
            for i, email, label in orm_db.select(
                f"SELECT id, email, label FROM account WHERE id IN ({_ids(wanted['account'])})"
            )
        }
    if wanted["key"]:
        keys = {
            str(i): name
            for i, name in orm_db.select(f"SELECT id, name FROM api_key WHERE id IN ({_ids(wanted['key'])})")
        }
    for facet, names, none in (("account", accounts, "no account"), ("key", keys, "no key")):
        for row in by[facet]:
            value = row.pop("value")
            row["id"] = int(value) if value else None
            row["name"] = names.get(value, f"{facet} {value}") if value else none
    for facet in ("model", "route", "transport"):
        for row in by[facet]:
            row[facet] = row.pop("value")


def _ids(ids: list[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)  # ints only: safe to inline
