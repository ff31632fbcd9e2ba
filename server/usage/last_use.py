"""When each account last served a request (any request-log row naming it), for the account list and page.

Owns `account_last_use`. The request-log writer records each batch's latest start per account in the
batch's own transaction, so reading every account's last use is one small table, not a probe of the log
per account. Retention pruning never touches it: an account idle for longer than the log is kept still
shows when it last served. A deleted account's row stays, as its request-log rows do (ids are never reused).
"""

from __future__ import annotations

from collections.abc import Iterable

from pony import orm

_KEEP_LATEST = (
    " ON CONFLICT (account_id) DO UPDATE SET at = CASE WHEN excluded.at > account_last_use.at "
    "THEN excluded.at ELSE account_last_use.at END"
)


def add(orm_db: orm.Database, uses: Iterable[tuple[int | None, float]]) -> None:
    """Record (account_id, started_at) of newly written rows. Call inside the transaction that wrote them;
    one statement for the batch, its accounts in id order so concurrent batches cannot deadlock."""
    latest: dict[int, float] = {}
    for account_id, started_at in uses:
        if account_id is not None and started_at > latest.get(account_id, float("-inf")):
            latest[account_id] = started_at
    if not latest:
        return
    params, marks = {}, []
    for i, account_id in enumerate(sorted(latest)):
        params[f"a{i}"], params[f"t{i}"] = account_id, latest[account_id]
        marks.append(f"($a{i}, $t{i})")
    orm_db.execute(
        f"INSERT INTO account_last_use (account_id, at) VALUES {', '.join(marks)}{_KEEP_LATEST}", {}, params
    )


@orm.db_session
def of_all(orm_db: orm.Database) -> dict[int, float]:
    return {
        int(account_id): float(at)
        for account_id, at in orm_db.select("SELECT account_id, at FROM account_last_use")
    }


@orm.db_session
def of_account(orm_db: orm.Database, account_id: int) -> float | None:
    rows = orm_db.select(
        "SELECT at FROM account_last_use WHERE account_id = $account_id", {}, {"account_id": account_id}
    )
    return float(rows[0]) if rows else None
