"""Sign-ins in progress (browser PKCE and device code), kept in the database so that any worker of any
replica can finish one: the callback may land on a different process than the one that started it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pony import orm

PENDING = "pending"
EXCHANGING = "exchanging"  # a callback claimed the code; a second callback for it is refused
COMPLETED = "completed"
FAILED = "failed"
EXPIRED = "expired"
DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    kind: str
    state: str
    code_verifier: str  # SecretBox ciphertext
    device_auth_id: str
    user_code: str
    poll_interval: float
    status: str
    error: str
    account_id: int | None
    reauth_account_id: int | None
    created_at: float
    expires_at: float

    def public(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        status = EXPIRED if self.status == PENDING and self.expires_at <= now else self.status
        answer = {
            "flow_id": self.id,
            "kind": self.kind,
            "status": status,
            "error": self.error or None,
            "account_id": self.account_id,
            "reauth_account_id": self.reauth_account_id,
            "expires_at": self.expires_at,
        }
        if self.kind == "device":
            answer["user_code"] = self.user_code
        return answer


def _flow(row) -> Flow:
    return Flow(
        id=row.id,
        kind=row.kind,
        state=row.state,
        code_verifier=row.code_verifier,
        device_auth_id=row.device_auth_id,
        user_code=row.user_code,
        poll_interval=row.poll_interval,
        status=row.status,
        error=row.error,
        account_id=row.account_id,
        reauth_account_id=row.reauth_account_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


@orm.db_session
def create(db: orm.Database, flow: Flow) -> Flow:
    now = time.time()
    db.LoginFlow(
        id=flow.id,
        kind=flow.kind,
        state=flow.state,
        code_verifier=flow.code_verifier,
        device_auth_id=flow.device_auth_id,
        user_code=flow.user_code,
        poll_interval=flow.poll_interval,
        status=PENDING,
        reauth_account_id=flow.reauth_account_id,
        created_at=now,
        expires_at=flow.expires_at,
        updated_at=now,
    )
    # Forget sign-ins that ended a day ago: they hold nothing anyone will ask for.
    db.execute("DELETE FROM login_flow WHERE expires_at < $cutoff", {}, {"cutoff": now - 86400})
    return flow


@orm.db_session
def get(db: orm.Database, flow_id: str) -> Flow | None:
    row = db.LoginFlow.get(id=flow_id)
    return None if row is None else _flow(row)


@orm.db_session
def claim(db: orm.Database, state: str, now: float) -> tuple[Flow | None, str]:
    """Take the pending flow with this `state` for the code exchange: (flow, "") or (None, why not).

    One conditional UPDATE, so two callbacks (a double click, the listener and a pasted URL) cannot
    both exchange the single-use code.
    """
    cursor = db.execute(
        "UPDATE login_flow SET status = 'exchanging', updated_at = $now "
        "WHERE state = $state AND status = 'pending' AND expires_at > $now",
        {},
        {"state": state, "now": now},
    )
    row = db.LoginFlow.get(state=state)
    if cursor.rowcount == 1 and row is not None:
        return _flow(row), ""
    if row is None:
        return None, "unknown sign-in (state does not match any pending sign-in); start again"
    if row.status == PENDING:
        return None, "this sign-in expired; start again"
    return None, f"this sign-in is already {row.status}"


@orm.db_session
def finish(
    db: orm.Database, flow_id: str, status: str, error: str = "", account_id: int | None = None
) -> Flow | None:
    row = db.LoginFlow.get(id=flow_id)
    if row is None:
        return None
    row.set(status=status, error=error[:500], account_id=account_id, updated_at=time.time())
    return _flow(row)


@orm.db_session
def pending_device(db: orm.Database, now: float) -> list[Flow]:
    rows = db.LoginFlow.select(lambda f: f.kind == "device" and f.status == PENDING and f.expires_at > now)
    return [_flow(row) for row in rows]


@orm.db_session
def pending_count(db: orm.Database, kind: str, now: float) -> int:
    return orm.count(f for f in db.LoginFlow if f.kind == kind and f.status == PENDING and f.expires_at > now)
