"""The usage API's answers, read from the rollups (never a scan of the raw log): totals, a time series,
errors by code and breakdowns by account, key, model and route, with latency and TTFT percentiles."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pony import orm

from server.db import Database
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
_MEASURES = (*_BASIC, *LATENCY_COLUMNS, *TTFT_COLUMNS)
_EMPTY = [0] * len(_MEASURES)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    since: float
    until: float
    bucket: str = "hour"  # hour | day
    top: int = 20  # rows per breakdown
    split: str = ""  # a breakdown whose values also get a series each (top ones only)


@dataclass(frozen=True, slots=True)
class _Span:
    """A query's range in whole buckets, and the rollup rows that cover it without time buckets."""

    grain: str
    start: int
    end: int
    pieces: tuple[tuple[str, int, int], ...]

    @classmethod
    def of(cls, spec: UsageQuery) -> _Span:
        step = GRAINS[spec.bucket]
        start = floor_to(spec.since, spec.bucket)
        end = floor_to(spec.until, spec.bucket) + (step if spec.until % step else 0)
        return cls(spec.bucket, start, end, tuple(cover(start, end, spec.bucket)))


async def report(db: Database, spec: UsageQuery) -> dict:
    """The usage report of a range. Reads that need nothing of each other run side by side, each on a
    connection of its own: the series beside the ranking, then the top values' figures, the split's
    series and the names of the accounts and keys shown (sequentially they added up to 30 ms at 500
    accounts on PostgreSQL)."""
    span = _Span.of(spec)
    series, ranked = await asyncio.gather(db.run(_series, span), db.run(_ranked, span))
    tops, codes = _tops(ranked, spec.top)
    split_values = tops[spec.split][:8] if spec.split in BREAKDOWNS else []
    figures, split_rows, names = await asyncio.gather(
        db.run(_figures_of, span.pieces, tops),
        db.run(_split_series, span, spec.split, split_values) if split_values else _none(),
        db.run(_names, tops),
    )
    by = {
        facet: [{"value": value, **_basic(figures[(facet, value)]), **_percentiles(figures[(facet, value)])}
                for value in values]
        for facet, values in tops.items()
    }  # fmt: skip
    _name(by, *names)
    split: dict[str, list[dict]] = {}
    for value, t, *rest in split_rows:
        split.setdefault(value, []).append({"t": int(t), **_basic(rest)})
    # The totals are the sum of the series' buckets (one row each in the whole pool's facet).
    total = [sum(column) for column in zip(*(row[1:] for row in series), strict=True)] if series else _EMPTY
    return {
        "since": span.start,
        "until": span.end,
        "bucket": span.grain,
        "totals": {**_basic(total), **_percentiles(total)},
        "series": [{"t": int(row[0]), **_basic(row[1:]), **_percentiles(row[1:])} for row in series],
        "errors_by_code": [{"code": code, "errors": int(n)} for code, n in codes],
        "by": by,
        "split": split,
    }


async def _none() -> list:
    return []


@orm.db_session
def _series(orm_db: orm.Database, span: _Span) -> list:
    return orm_db.select(
        f"SELECT bucket_start, {', '.join(_MEASURES)} FROM usage_rollup WHERE grain = $grain "
        "AND facet = 'all' AND bucket_start >= $start AND bucket_start < $end ORDER BY bucket_start",
        {},
        {"grain": span.grain, "start": span.start, "end": span.end},
    )


@orm.db_session
def _ranked(orm_db: orm.Database, span: _Span) -> list:
    """Every value of every breakdown, and every error code, with its requests and errors over the span.
    The ranking reads these two counts alone (from an index of their own), and only the top values' other
    figures are summed: a pool of 500 accounts makes 15,000 account-days a month, and summing a dozen
    columns of each (let alone the ~60 histogram columns) took 30-200 ms."""
    _no_parallel_workers(orm_db)
    facets = ", ".join(f"'{name}'" for name in (*BREAKDOWNS, "error_code"))
    ranges = " UNION ALL ".join(
        f"SELECT facet, value, requests, errors FROM usage_rollup WHERE facet IN ({facets}) AND {piece}"
        for piece in _piece_ranges(span.pieces)
    )
    # The rows first, then the sums: reading one range inside the GROUP BY, SQLite walked each facet's
    # whole history in the value index for its order (39 ms for a day by hour at 500 accounts). A UNION
    # ALL of index ranges, as PostgreSQL scanned the whole table for the same ranges ORed.
    return orm_db.execute(  # not select(), which reads a statement starting WITH as an expression
        f"WITH spans AS MATERIALIZED ({ranges}) "
        f"SELECT facet, value, {_sum('requests')}, {_sum('errors')} FROM spans GROUP BY facet, value",
        {},
        _span_params(span.pieces),
    ).fetchall()


def _tops(ranked: list, top: int) -> tuple[dict[str, list[str]], list[tuple[str, int]]]:
    """The `top` values of each breakdown by requests, and the error codes by errors. Ties go by name, so
    the last place and the order of equals stay put between reads."""
    tops: dict[str, list[str]] = {name: [] for name in BREAKDOWNS}
    codes = []
    for facet, value, _, errors in sorted(ranked, key=lambda row: (-row[2], row[0], row[1])):
        if facet == "error_code":
            codes.append((value, errors))
        elif len(tops[facet]) < top:
            tops[facet].append(value)
    codes.sort(key=lambda code: (-code[1], code[0]))
    return tops, codes


@orm.db_session
def _split_series(orm_db: orm.Database, span: _Span, facet: str, values: list[str]) -> list:
    """The chosen values' own series. A value has one row per bucket (the rollup's unique cell): nothing
    to group."""
    wanted = {f"v{i}": value for i, value in enumerate(values)}
    return orm_db.select(
        f"SELECT value, bucket_start, {', '.join(_BASIC)} FROM usage_rollup "
        "WHERE grain = $grain AND facet = $facet AND bucket_start >= $start AND bucket_start < $end "
        f"AND value IN ({', '.join(f'${name}' for name in wanted)}) ORDER BY bucket_start",
        {},
        {"grain": span.grain, "facet": facet, "start": span.start, "end": span.end, **wanted},
    )


def _no_parallel_workers(orm_db: orm.Database) -> None:
    if orm_db.provider.dialect == "PostgreSQL":
        # These reads take a few ms; PostgreSQL planned some in parallel, and starting the worker
        # processes cost 15 ms.
        orm_db.execute("SET LOCAL max_parallel_workers_per_gather = 0")


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


def _piece_ranges(pieces: tuple[tuple[str, int, int], ...]) -> list[str]:
    """Each piece's rollup rows as an index range, to be read as a UNION ALL (PostgreSQL scanned the
    whole table for the same ranges ORed); `_span_params` binds their bounds."""
    return [
        f"grain = '{grain}' AND bucket_start >= $lo{i} AND bucket_start < $hi{i}"
        for i, (grain, _, _) in enumerate(pieces)
    ]


def _span_params(pieces: tuple[tuple[str, int, int], ...]) -> dict:
    return {
        name: bound
        for i, (_, lo, hi) in enumerate(pieces)
        for name, bound in ((f"lo{i}", lo), (f"hi{i}", hi))
    }


@orm.db_session
def _figures_of(
    orm_db: orm.Database, pieces: tuple[tuple[str, int, int], ...], tops: dict[str, list[str]]
) -> dict:
    """Every figure of the top values of each breakdown over the pieces, keyed by (facet, value)."""
    pairs = [(facet, value) for facet, values in tops.items() for value in values]
    if not pairs:
        return {}
    _no_parallel_workers(orm_db)
    params = _span_params(pieces)
    for i, (facet, value) in enumerate(pairs):
        params[f"f{i}"], params[f"v{i}"] = facet, value
    shown = ", ".join(f"($f{i}, $v{i})" for i in range(len(pairs)))
    # Each (facet, value) shown is a probe of the value index per piece. A facet IN (...) AND value IN
    # (...) condition probed every pairing of the two lists, and one condition per facet took PostgreSQL
    # 4 ms to plan.
    selects = " UNION ALL ".join(
        f"SELECT r.facet, r.value, {', '.join(f'r.{m}' for m in _MEASURES)} FROM usage_rollup r "
        f"JOIN shown s ON r.facet = s.facet AND r.value = s.value WHERE {piece}"
        for piece in _piece_ranges(pieces)
    )
    rows = orm_db.execute(  # not select(), which reads a statement starting WITH as an expression
        f"WITH shown (facet, value) AS (VALUES {shown}) "
        f"SELECT facet, value, {', '.join(map(_sum, _MEASURES))} FROM ({selects}) AS spans "
        "GROUP BY facet, value",
        {},
        params,
    ).fetchall()
    return {(facet, value): figures for facet, value, *figures in rows}


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


@orm.db_session
def _names(orm_db: orm.Database, tops: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """Names of the accounts and keys shown, read for those alone (a pool has hundreds of accounts)."""
    accounts, keys = {}, {}
    wanted = {facet: sorted({int(value) for value in tops[facet] if value}) for facet in ("account", "key")}
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
    return accounts, keys


def _name(by: dict, accounts: dict[str, str], keys: dict[str, str]) -> None:
    """Each row's value becomes its id and name (accounts, keys) or its model, route or transport."""
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
