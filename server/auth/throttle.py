"""Sign-in throttling: each attempt is written down before its password, code or token is checked, and
each address has at most one check in flight. Owns dashboard_auth_failure and dashboard_sign_in_gate.

An attempt counts as a failure from the moment it is admitted; a success deletes its address's rows. The
admission (lock the address's gate row, count, write the attempt, mark the check in flight) is one
transaction: on SQLite the first write takes the database's write lock (BEGIN IMMEDIATE), on PostgreSQL
the upsert locks the gate row until commit and the counts, read after it, see every committed attempt.
So concurrent attempts from one address on any worker or replica count one after another, as a sequence
would. Everyone's count is read under that one address's lock only: a flood from many addresses at once
may pass it by a few, which the flood rule (a few more failures per address) tolerates.
"""

from __future__ import annotations

from dataclasses import dataclass

from pony import orm

WINDOW_S = 15 * 60.0
PER_ADDRESS = 10
OVERALL = 100
# While failures from everyone exceed OVERALL, an address may still fail this often: a flood from many
# addresses must not lock the owner out (an address with no failures is never refused, and a typo is
# forgiven), yet each flooding address is cut to a few guesses.
PER_ADDRESS_IN_A_FLOOD = 3
# A check that never reports back (a worker killed mid-check) frees its address after this long.
CHECK_HOLD_S = 60.0


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this address try now": admitted with a claim on its check, or why not."""

    claim: float = 0.0  # the check's mark in the gate row; 0 when refused
    refusal: str = ""  # "", "too_many" or "checking"
    retry_after_s: int = 0

    @property
    def admitted(self) -> bool:
        return not self.refusal


_LOCK_GATE = """
INSERT INTO dashboard_sign_in_gate (client_address, checking_until) VALUES ($address, 0)
ON CONFLICT (client_address) DO UPDATE SET checking_until = dashboard_sign_in_gate.checking_until
RETURNING checking_until
"""


@orm.db_session(retry=3)
def admit(db: orm.Database, address: str, now: float, exempt_from_flood: bool) -> Admission:
    """Count this address's failures (and everyone's) and, if it may try, record the attempt and claim
    its one check; all under the address's lock. `exempt_from_flood`: a signed-in caller."""
    address = address[:64]
    checking_until = db.execute(_LOCK_GATE, {}, {"address": address}).fetchone()[0]
    if checking_until > now:
        return Admission(refusal="checking", retry_after_s=1)
    since = now - WINDOW_S
    mine = db.select(
        "SELECT at FROM dashboard_auth_failure WHERE client_address = $address AND at > $since "
        "ORDER BY at DESC LIMIT $limit",
        {},
        {"address": address, "since": since, "limit": PER_ADDRESS},
    )
    waits = []
    if len(mine) >= PER_ADDRESS:
        waits.append(mine[PER_ADDRESS - 1] + WINDOW_S - now)
    elif len(mine) >= PER_ADDRESS_IN_A_FLOOD and not exempt_from_flood:
        flood = db.select(
            "SELECT at FROM dashboard_auth_failure WHERE at > $since ORDER BY at DESC LIMIT 1 OFFSET $skip",
            {},
            {"since": since, "skip": OVERALL - 1},
        )
        if flood:  # free again when the flood ebbs or this address's own failures age out
            waits.append(min(flood[0], mine[PER_ADDRESS_IN_A_FLOOD - 1]) + WINDOW_S - now)
    if waits:
        return Admission(refusal="too_many", retry_after_s=max(1, int(waits[0]) + 1))
    claim = now + CHECK_HOLD_S
    db.execute(
        "INSERT INTO dashboard_auth_failure (client_address, at) VALUES ($address, $now)",
        {},
        {"address": address, "now": now},
    )
    db.execute(
        "UPDATE dashboard_sign_in_gate SET checking_until = $claim WHERE client_address = $address",
        {},
        {"address": address, "claim": claim},
    )
    return Admission(claim=claim)


@orm.db_session(retry=3)
def settle(db: orm.Database, address: str, claim: float, succeeded: bool) -> None:
    """The check is over: free the address for its next one; a success also wipes its failures."""
    address = address[:64]
    if succeeded:
        db.execute(
            "DELETE FROM dashboard_auth_failure WHERE client_address = $address", {}, {"address": address}
        )
    db.execute(
        "UPDATE dashboard_sign_in_gate SET checking_until = 0 "
        "WHERE client_address = $address AND checking_until = $claim",
        {},
        {"address": address, "claim": claim},
    )


@orm.db_session(retry=3)
def prune(db: orm.Database, now: float) -> None:
    """Failures too old to count, and the gate rows of addresses with none left and no check in flight."""
    since = now - WINDOW_S
    orm.delete(f for f in db.DashboardAuthFailure if f.at <= since)
    db.execute(
        "DELETE FROM dashboard_sign_in_gate AS g WHERE checking_until < $now AND NOT EXISTS "
        "(SELECT 1 FROM dashboard_auth_failure f WHERE f.client_address = g.client_address)",
        {},
        {"now": now},
    )
