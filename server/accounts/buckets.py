"""The database copy of per-model limit buckets (table account_model_bucket): written when the backend
refuses a model for its bucket or the usage poll reports one, read by every worker's reload.
Owns account_model_bucket; the routing state itself is server.balancer.buckets."""

from __future__ import annotations

import orjson
from pony import orm

from server.accounts.store import bump_roster_version
from server.balancer.buckets import BucketState

_UPSERT = """
INSERT INTO account_model_bucket
    (account_id, bucket, models, used_percent, reset_at, cooling_until, updated_at)
VALUES ($account_id, $bucket, $models, $used_percent, $reset_at, $cooling_until, $updated_at)
ON CONFLICT (account_id, bucket) DO UPDATE SET
    models = CASE WHEN excluded.models = '[]' THEN account_model_bucket.models ELSE excluded.models END,
    used_percent = excluded.used_percent, reset_at = excluded.reset_at,
    cooling_until = excluded.cooling_until, updated_at = excluded.updated_at
WHERE account_model_bucket.updated_at <= excluded.updated_at
"""


@orm.db_session(retry=3)
def save(db: orm.Database, states: list[BucketState]) -> bool:
    """Keep each state (a newer stored one wins); when one starts or stops refusing its models, or is
    new, tell every worker and replica (and answer True). A changed percentage alone waits for the
    next reload."""
    changed = False
    for state in states:
        before = db.select(
            "SELECT cooling_until FROM account_model_bucket WHERE account_id = $a AND bucket = $b",
            {},
            {"a": state.account_id, "b": state.bucket},
        )
        if not before or (float(before[0] or 0.0) > state.updated_at) != (
            state.cooling_until > state.updated_at
        ):
            changed = True
        db.execute(
            _UPSERT,
            {},
            {
                "account_id": state.account_id,
                "bucket": state.bucket,
                "models": orjson.dumps(sorted(state.models)).decode(),
                "used_percent": state.used_percent,
                "reset_at": state.reset_at,
                "cooling_until": state.cooling_until,
                "updated_at": state.updated_at,
            },
        )
    if changed:
        bump_roster_version(db)
    return changed


@orm.db_session
def load(db: orm.Database) -> list[BucketState]:
    rows = db.select(
        "SELECT b.account_id, b.bucket, b.models, b.used_percent, b.reset_at, b.cooling_until, b.updated_at "
        "FROM account_model_bucket b JOIN account a ON a.id = b.account_id"
    )
    return [
        BucketState(
            int(r[0]),
            str(r[1]),
            float(r[3]) if r[3] is not None else None,
            float(r[4]) if r[4] is not None else None,
            float(r[5] or 0.0),
            tuple(orjson.loads(r[2] or "[]")),
            float(r[6]),
        )
        for r in rows
    ]
