"""Read side of the request log: recent requests and usage totals, for the dashboard and the usage API.

Synchronous @db_session functions, called as `await db.run(fn, ...)`; they return JSON-ready dicts.
"""

from __future__ import annotations

from pony import orm

from server.usage.writer import COLUMNS

RECENT_LIMIT_MAX = 1000

_TOKEN_KINDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
_FIELDS = ("id", *COLUMNS)  # every stored column, as the writer writes them


@orm.db_session
def recent_requests(orm_db: orm.Database, limit: int = 100, account_id: int | None = None) -> list[dict]:
    """The newest requests first, optionally of one account; at most RECENT_LIMIT_MAX."""
    limit = max(0, min(int(limit), RECENT_LIMIT_MAX))
    log = orm_db.RequestLog
    query = log.select() if account_id is None else log.select(lambda r: r.account_id == account_id)
    rows = query.order_by(orm.desc(log.started_at), orm.desc(log.id))[:limit]
    return [{name: getattr(row, name) for name in _FIELDS} for row in rows]


@orm.db_session
def usage_totals(orm_db: orm.Database, since: float, account_id: int | None = None) -> dict:
    """Requests, tokens by kind and cost since an epoch time, optionally of one account.

    `unpriced_requests` counts requests that used tokens but have no cost (a model without a price), so
    a dashboard can say its cost total is a lower bound.
    """
    where = "started_at >= $since" + (" AND account_id = $account_id" if account_id is not None else "")
    sums = ", ".join(f"COALESCE(SUM({kind}), 0)" for kind in _TOKEN_KINDS)
    row = orm_db.select(
        f"SELECT COUNT(*), {sums}, COALESCE(SUM(cost_usd), 0), "
        "COALESCE(SUM(CASE WHEN cost_usd IS NULL AND total_tokens > 0 THEN 1 ELSE 0 END), 0) "
        f"FROM request_log WHERE {where}",
        {},
        {"since": since, "account_id": account_id},
    )[0]
    tokens = {kind: int(value) for kind, value in zip(_TOKEN_KINDS, row[1:6], strict=True)}
    return {
        "requests": int(row[0]),
        **tokens,
        "cost_usd": float(row[6]),
        "unpriced_requests": int(row[7]),
    }
