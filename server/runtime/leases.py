"""Leases: exactly-one-holder coordination across all workers of all replicas, with expiry.

Acquire and renew are single conditional statements, so two contenders can never both win; the fencing
token grows on every change of holder, so work guarded by a stale lease can be recognised and refused.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

from pony import orm


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    fencing_token: int
    expires_at: float


class StaleLeaseError(RuntimeError):
    """The caller's lease expired or was taken over; its fencing token no longer guards anything."""


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_ACQUIRE = """
INSERT INTO lease (name, holder, fencing_token, expires_at) VALUES ($name, $holder, 1, $expires_at)
ON CONFLICT (name) DO UPDATE SET
    fencing_token = CASE WHEN lease.holder = excluded.holder AND lease.expires_at > $now
                         THEN lease.fencing_token ELSE lease.fencing_token + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE lease.expires_at <= $now OR lease.holder = excluded.holder
RETURNING fencing_token
"""


@orm.db_session
def acquire(db: orm.Database, name: str, holder: str, ttl: float, now: float | None = None) -> Lease | None:
    """Take the lease if it is free, expired, or already ours; None while someone else holds it."""
    now = time.time() if now is None else now
    expires_at = now + ttl
    row = db.execute(_ACQUIRE, {}, {"name": name, "holder": holder, "expires_at": expires_at, "now": now})
    fetched = row.fetchone()
    if fetched is None:
        return None
    return Lease(name, holder, int(fetched[0]), expires_at)


@orm.db_session
def renew(db: orm.Database, lease: Lease, ttl: float, now: float | None = None) -> Lease:
    now = time.time() if now is None else now
    expires_at = now + ttl
    cursor = db.execute(
        "UPDATE lease SET expires_at = $expires_at WHERE name = $name AND holder = $holder "
        "AND fencing_token = $token AND expires_at > $now",
        {},
        {
            "expires_at": expires_at,
            "name": lease.name,
            "holder": lease.holder,
            "token": lease.fencing_token,
            "now": now,
        },
    )
    if cursor.rowcount != 1:
        raise StaleLeaseError(f"lease {lease.name!r} was lost (token {lease.fencing_token})")
    return Lease(lease.name, lease.holder, lease.fencing_token, expires_at)


@orm.db_session
def release(db: orm.Database, lease: Lease) -> bool:
    """Expire the lease now so the next contender need not wait; False if it was no longer ours."""
    cursor = db.execute(
        "UPDATE lease SET expires_at = 0 WHERE name = $name AND holder = $holder AND fencing_token = $token",
        {},
        {"name": lease.name, "holder": lease.holder, "token": lease.fencing_token},
    )
    return cursor.rowcount == 1


def check_fence(db: orm.Database, name: str, fencing_token: int, now: float | None = None) -> None:
    """Inside the caller's db_session: raise StaleLeaseError unless `fencing_token` still holds `name`.

    Call it in the same transaction as the guarded write, so a holder that lost its lease while paused
    (GC, a slow network) cannot overwrite what the new holder did.
    """
    now = time.time() if now is None else now
    rows = db.select(
        "SELECT fencing_token FROM lease WHERE name = $name AND expires_at > $now",
        {},
        {"name": name, "now": now},
    )
    if not rows or int(rows[0]) != fencing_token:
        raise StaleLeaseError(f"fencing token {fencing_token} for lease {name!r} is stale")
