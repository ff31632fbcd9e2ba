"""The usage API's answers, read from the rollups (never a scan of the raw log): totals, a time series,
errors by code and breakdowns by account, key, model and route, with latency and TTFT percentiles."""

from __future__ import annotations

from dataclasses import dataclass

from pony import orm

from server.usage.histogram import LATENCY_COLUMNS, TTFT_COLUMNS, summary
from server.usage.rollups import GRAINS, floor_to

TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
_BASIC = ("requests", "errors", *TOKENS, "cost_usd", "unpriced_requests", "latency_sum_ms")
BREAKDOWNS = ("account", "key", "model", "route", "transport")
MAX_BUCKETS = 24 * 400
_LADDER = ("week", "day", "hour")  # coarsest first
_FRACTIONAL = frozenset({"cost_usd", "latency_sum_ms", "ttft_sum_ms"})
# Where each figure sits in a row of _BASIC then the two histograms.
_COUNTS = tuple((i, name) for i, name in enumerate(_BASIC) if name not in _FRACTIONAL)
_COST, _LATENCY_SUM = _BASIC.index("cost_usd"), _BASIC.index("latency_sum_ms")
_LATENCY = slice(len(_BASIC), len(_BASIC) + len(LATENCY_COLUMNS))
_TTFT = slice(_LATENCY.stop, _LATENCY.stop + len(TTFT_COLUMNS))


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
    measures = ", ".join((*_BASIC, *LATENCY_COLUMNS, *TTFT_COLUMNS))
    if orm_db.provider.dialect == "PostgreSQL":
        # Each read here takes a few ms; PostgreSQL planned some in parallel, and starting the worker
        # processes cost 15 ms.
        orm_db.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    # One row per bucket in the whole pool's facet; the totals are their sum.
    series = orm_db.select(
        f"SELECT bucket_start, {measures} FROM usage_rollup WHERE grain = $grain AND facet = 'all' "
        "AND bucket_start >= $start AND bucket_start < $end ORDER BY bucket_start",
        {},
        {"grain": grain, "start": start, "end": end},
    )
    total = [sum(column) for column in zip(*(row[1:] for row in series), strict=True)] if series else None

    # Every breakdown and the error codes ranked in one pass over the range by their request counts
    # alone, then every figure of the top ones only: a pool of 500 accounts makes 15,000 account-days a
    # month, and summing a dozen columns of each (let alone the ~60 histogram columns) took 30-200 ms.
    # Ranges need no time buckets, so they read the coarsest rows that fit (see `cover`).
    pieces = cover(start, end, grain)
    facets = ", ".join(f"'{name}'" for name in (*BREAKDOWNS, "error_code"))
    ranked = orm_db.select(
        f"SELECT facet, value, {_sum('requests')}, {_sum('errors')} "
        f"FROM {_rows_of(pieces, f'facet IN ({facets})', 'facet, value, requests, errors')} "
        "GROUP BY facet, value",
        {},
        _span_params(pieces),
    )
    tops: dict[str, list[str]] = {name: [] for name in BREAKDOWNS}
    codes = []
    # Most requests first; ties by name, so the 20th place and the order of equals stay put between reads.
    for facet, value, _, errors in sorted(ranked, key=lambda row: (-row[2], row[0], row[1])):
        if facet == "error_code":
            codes.append((value, errors))
        elif len(tops[facet]) < spec.top:
            tops[facet].append(value)
    codes.sort(key=lambda code: (-code[1], code[0]))
    figures_of = _figures_of(orm_db, pieces, tops)
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
            f"SELECT value, bucket_start, {', '.join(map(_sum, _BASIC))} FROM usage_rollup "
            "WHERE grain = $grain AND facet = $facet AND bucket_start >= $start AND bucket_start < $end "
            f"AND value IN ({', '.join(f'${name}' for name in wanted)}) "
            "GROUP BY value, bucket_start ORDER BY bucket_start",
            {},
            {"grain": grain, "facet": spec.split, "start": start, "end": end, **wanted},
        )
        for value, t, *rest in rows:
            split.setdefault(value, []).append({"t": int(t), **_basic(rest)})
    _name_accounts_and_keys(orm_db, by)
    empty = [0] * (len(_BASIC) + len(LATENCY_COLUMNS) + len(TTFT_COLUMNS))
    return {
        "since": start,
        "until": end,
        "bucket": grain,
        "totals": {**_basic(total or empty), **_percentiles(total or empty)},
        "series": [{"t": int(row[0]), **_basic(row[1:]), **_percentiles(row[1:])} for row in series],
        "errors_by_code": [{"code": code, "errors": int(n)} for code, n in codes],
        "by": by,
        "split": split,
    }


def cover(start: int, end: int, finest: str) -> list[tuple[str, int, int]]:
    """[start, end) as (grain, from, to) pieces of the fewest rollup rows: the whole weeks inside it, whole
    days around them, and (for an hourly range) hours at the edges. `start` and `end` are whole `finest`."""
    ladder = _LADDER[: _LADDER.index(finest) + 1]

    def split(lo: int, hi: int, level: int) -> list[tuple[str, int, int]]:
        if lo >= hi:
            return []
        grain = ladder[level]
        if level == len(ladder) - 1:
            return [(grain, lo, hi)]
        step = GRAINS[grain]
        first, last = -(-lo // step) * step, hi // step * step
        if first >= last:
            return split(lo, hi, level + 1)
        return [*split(lo, first, level + 1), (grain, first, last), *split(last, hi, level + 1)]

    return split(start, end, 0)


def _rows_of(pieces: list[tuple[str, int, int]], condition: str, columns: str) -> str:
    """The rollup rows of the pieces as one subquery: a UNION ALL of index ranges (PostgreSQL scanned
    the whole table for the same ranges ORed)."""
    selects = [
        f"SELECT {columns} FROM usage_rollup WHERE grain = '{grain}' AND ({condition}) "
        f"AND bucket_start >= $lo{i} AND bucket_start < $hi{i}"
        for i, (grain, _, _) in enumerate(pieces)
    ]
    return f"({' UNION ALL '.join(selects) or f'SELECT {columns} FROM usage_rollup WHERE 1 = 0'}) AS spans"


def _span_params(pieces: list[tuple[str, int, int]]) -> dict:
    return {
        name: bound
        for i, (_, lo, hi) in enumerate(pieces)
        for name, bound in ((f"lo{i}", lo), (f"hi{i}", hi))
    }


def _figures_of(orm_db: orm.Database, pieces: list[tuple[str, int, int]], tops: dict[str, list[str]]) -> dict:
    """Every figure of the top values of each breakdown over the pieces, keyed by (facet, value)."""
    shown = {
        f"v{i}": v for i, v in enumerate(sorted({value for values in tops.values() for value in values}))
    }
    if not shown:
        return {}
    measures = (*_BASIC, *LATENCY_COLUMNS, *TTFT_COLUMNS)
    # One value list for every facet (a condition per facet made PostgreSQL plan for 4 ms); the few cells
    # it also matches (key 3 when account 3 is shown) are left out below.
    facets = ", ".join(f"'{facet}'" for facet, values in tops.items() if values)
    condition = f"facet IN ({facets}) AND value IN ({', '.join(f'${name}' for name in shown)})"
    rows = orm_db.select(
        f"SELECT facet, value, {', '.join(map(_sum, measures))} "
        f"FROM {_rows_of(pieces, condition, ', '.join(('facet', 'value', *measures)))} GROUP BY facet, value",
        {},
        {**_span_params(pieces), **shown},
    )
    wanted = {(facet, value) for facet, values in tops.items() for value in values}
    return {(facet, value): figures for facet, value, *figures in rows if (facet, value) in wanted}


def _sum(measure: str) -> str:
    """A group's sum of a measure; a count's as an integer (PostgreSQL sums BIGINTs into NUMERICs, which
    arrive as Decimals: turning 10,000 of them into numbers was a fifth of the report's time)."""
    return f"SUM({measure})" if measure in _FRACTIONAL else f"CAST(SUM({measure}) AS BIGINT)"


def _basic(row) -> dict:
    out = {name: int(row[i]) for i, name in _COUNTS}
    requests = out["requests"]
    out["cost_usd"] = round(float(row[_COST]), 6)
    out["error_rate"] = round(out["errors"] / requests, 4) if requests else 0.0
    out["latency_avg_ms"] = round(float(row[_LATENCY_SUM]) / requests, 1) if requests else None
    return out


def _percentiles(row) -> dict:
    # Counts arrive as ints: the rows' own BIGINTs, or sums cast to BIGINT (`_sum`).
    return {"latency_ms": summary(row[_LATENCY]), "ttft_ms": summary(row[_TTFT])}


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
