"""Each API key's all-time figures (served and refused requests, tokens, cost, last use), kept as rows land.

Owns `api_key_totals`. The request-log writer adds every batch's new rows here in the batch's own
transaction, so the totals always equal the committed rows, and reading a key is one primary-key lookup
however long the log grows. Retention pruning deletes raw rows and never touches these: all-time figures
do not shrink when old rows go (an install that upgraded counts from the oldest row it still had).
"""

from __future__ import annotations

from dataclasses import dataclass

from pony import orm

# The request-log columns a key's totals are made of, in the order add() takes them.
FIELDS = (
    "api_key_id",
    "attempts",
    "error_code",
    "total_tokens",
    "cached_input_tokens",
    "cost_usd",
    "started_at",
)
# Error codes of requests a key's own rules refused (request-log rows with no attempt).
REFUSAL_CODES = ("api_key_limit_reached", "model_not_allowed", "reasoning_effort_not_allowed")


@dataclass(frozen=True, slots=True)
class KeyTotals:
    request_count: int = 0  # served: reached an account
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    last_used_at: float | None = None  # the last served request
    refused_count: int = 0  # turned away by the key's own rules; other failures are neither


_COLUMNS = (
    "api_key_id, request_count, total_tokens, cached_input_tokens, cost_usd, last_used_at, refused_count"
)
_ADD = f"""
INSERT INTO api_key_totals ({_COLUMNS})
VALUES ($key, $served, $tokens, $cached, $cost, $last, $refused)
ON CONFLICT (api_key_id) DO UPDATE SET
    request_count = api_key_totals.request_count + excluded.request_count,
    total_tokens = api_key_totals.total_tokens + excluded.total_tokens,
    cached_input_tokens = api_key_totals.cached_input_tokens + excluded.cached_input_tokens,
    cost_usd = api_key_totals.cost_usd + excluded.cost_usd,
    last_used_at = CASE WHEN api_key_totals.last_used_at IS NULL
                          OR excluded.last_used_at > api_key_totals.last_used_at
                   THEN excluded.last_used_at ELSE api_key_totals.last_used_at END,
    refused_count = api_key_totals.refused_count + excluded.refused_count
"""


def add(orm_db: orm.Database, uses: list[tuple]) -> None:
    """Count newly written request-log rows (FIELDS tuples) into their keys' totals. Call inside the
    transaction that wrote them; keys are updated in id order so concurrent batches cannot deadlock."""
    per_key: dict[int, list] = {}
    for key_id, attempts, error_code, tokens, cached, cost, started_at in uses:
        if key_id is None:
            continue
        sums = per_key.get(key_id)
        if sums is None:
            sums = per_key[key_id] = [0, 0, 0, 0.0, None, 0]
        if attempts > 0:
            sums[0] += 1
            if sums[4] is None or started_at > sums[4]:
                sums[4] = started_at
        elif error_code in REFUSAL_CODES:
            sums[5] += 1
        sums[1] += tokens or 0
        sums[2] += cached or 0
        sums[3] += cost or 0.0
    for key_id in sorted(per_key):
        served, tokens, cached, cost, last, refused = per_key[key_id]
        orm_db.execute(
            _ADD,
            {},
            {
                "key": key_id,
                "served": served,
                "tokens": tokens,
                "cached": cached,
                "cost": cost,
                "last": last,
                "refused": refused,
            },
        )


@orm.db_session
def read(orm_db: orm.Database, key_ids: list[int]) -> dict[int, KeyTotals]:
    """The totals of these keys; a key that has no row yet has no entry (callers default it)."""
    if not key_ids:
        return {}
    wanted = ", ".join(str(int(k)) for k in sorted(set(key_ids)))
    rows = orm_db.select(f"SELECT {_COLUMNS} FROM api_key_totals WHERE api_key_id IN ({wanted})")
    return {
        int(key): KeyTotals(int(n), int(t), int(c), float(cost), _seconds(last), int(refused))
        for key, n, t, c, cost, last, refused in rows
    }


def _seconds(value) -> float | None:
    return None if value is None else float(value)


def forget(orm_db: orm.Database, key_id: int) -> None:
    """A deleted key's figures go with it (its request-log rows stay, as history)."""
    orm_db.execute("DELETE FROM api_key_totals WHERE api_key_id = $key_id", {}, {"key_id": key_id})
