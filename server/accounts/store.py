"""Account rows: the only code that writes them. Synchronous @db_session functions run through db.run.

Tokens are stored as SecretBox ciphertexts; every change bumps the `roster` change marker so workers
and replicas reload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pony import orm

from server import leases
from server.accounts.authjson import Credentials
from server.balancer.slots import DEFAULT_CAPACITY
from server.secretbox import SecretBox

STATUSES = ("active", "rate_limited", "quota_exceeded", "paused", "reauth_required", "deactivated")


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """What a worker keeps in memory for routing: identity, state and the current access token."""

    id: int
    chatgpt_account_id: str
    email: str
    plan_type: str
    status: str
    status_reason: str
    status_until: float
    slot: int
    access_token: str
    access_expires_at: float


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """What the API shows: no token ever."""

    id: int
    chatgpt_account_id: str
    email: str
    plan_type: str
    status: str
    status_reason: str
    status_until: float
    slot: int
    created_at: float
    last_refresh_at: float

    def public(self) -> dict:
        return {
            "id": self.id,
            "chatgpt_account_id": self.chatgpt_account_id,
            "email": self.email,
            "plan_type": self.plan_type,
            "status": self.status,
            "status_reason": self.status_reason,
            "status_until": self.status_until or None,
            "slot": self.slot,
            "created_at": self.created_at,
            "last_refresh_at": self.last_refresh_at or None,
        }


@dataclass(frozen=True, slots=True)
class StoredTokens:
    access_token: str
    refresh_token: str
    id_token: str
    access_expires_at: float


@dataclass(frozen=True, slots=True)
class UpsertResult:
    account: AccountSummary
    created: bool


def _summary(row) -> AccountSummary:
    return AccountSummary(
        id=row.id,
        chatgpt_account_id=row.chatgpt_account_id,
        email=row.email,
        plan_type=row.plan_type,
        status=row.status,
        status_reason=row.status_reason,
        status_until=row.status_until,
        slot=row.slot,
        created_at=row.created_at,
        last_refresh_at=row.last_refresh_at,
    )


def bump_roster_version(db: orm.Database) -> None:
    """Inside a db_session: tell every worker and replica that accounts changed."""
    db.execute("UPDATE change_marker SET version = version + 1 WHERE name = 'roster'")


@orm.db_session
def roster_version(db: orm.Database) -> int:
    return int(db.select("SELECT version FROM change_marker WHERE name = 'roster'")[0])


@orm.db_session(retry=5)
def upsert_credentials(db: orm.Database, creds: Credentials, box: SecretBox) -> UpsertResult:
    """Add an account, or refresh the tokens of the one with the same ChatGPT account id."""
    now = time.time()
    row = db.Account.get(chatgpt_account_id=creds.chatgpt_account_id)
    sealed = {
        "access_token": box.encrypt(creds.access_token),
        "refresh_token": box.encrypt(creds.refresh_token),
        "id_token": box.encrypt(creds.id_token),
    }
    created = row is None
    if created:
        row = db.Account(
            chatgpt_account_id=creds.chatgpt_account_id,
            email=creds.email,
            plan_type=creds.plan_type,
            slot=_free_slot(db),
            access_expires_at=creds.access_expires_at,
            last_refresh_at=creds.last_refresh_at,
            created_at=now,
            updated_at=now,
            **sealed,
        )
        row.flush()
        _record_event(db, row.id, "", "active", "imported", now)
    else:
        row.set(
            email=creds.email or row.email,
            plan_type=creds.plan_type or row.plan_type,
            access_expires_at=creds.access_expires_at,
            last_refresh_at=max(creds.last_refresh_at, row.last_refresh_at),
            updated_at=now,
            **sealed,
        )
        if row.status == "reauth_required":
            _change_status(db, row, "active", "credentials re-imported", 0.0, now)
    bump_roster_version(db)
    return UpsertResult(_summary(row), created)


def _free_slot(db: orm.Database) -> int:
    used = set(orm.select(a.slot for a in db.Account)[:])
    for slot in range(DEFAULT_CAPACITY):
        if slot not in used:
            return slot
    raise RuntimeError(f"codex-lb supports at most {DEFAULT_CAPACITY} accounts")


@orm.db_session
def list_accounts(db: orm.Database) -> list[AccountSummary]:
    return [_summary(row) for row in db.Account.select().order_by(lambda a: a.id)]


@orm.db_session
def load_roster(db: orm.Database, box: SecretBox) -> list[AccountRecord]:
    return [
        AccountRecord(
            id=row.id,
            chatgpt_account_id=row.chatgpt_account_id,
            email=row.email,
            plan_type=row.plan_type,
            status=row.status,
            status_reason=row.status_reason,
            status_until=row.status_until,
            slot=row.slot,
            access_token=box.decrypt(row.access_token),
            access_expires_at=row.access_expires_at,
        )
        for row in db.Account.select().order_by(lambda a: a.id)
    ]


@orm.db_session
def read_tokens(db: orm.Database, account_id: int, box: SecretBox) -> StoredTokens:
    row = db.Account[account_id]
    return StoredTokens(
        access_token=box.decrypt(row.access_token),
        refresh_token=box.decrypt(row.refresh_token),
        id_token=box.decrypt(row.id_token),
        access_expires_at=row.access_expires_at,
    )


@orm.db_session
def save_refreshed_tokens(
    db: orm.Database, account_id: int, tokens: StoredTokens, box: SecretBox, lease: leases.Lease
) -> None:
    """Store rotated tokens, only while the refresh lease is still ours (a stale refresher is refused)."""
    leases.check_fence(db, lease.name, lease.fencing_token)
    now = time.time()
    row = db.Account[account_id]
    row.set(
        access_token=box.encrypt(tokens.access_token),
        refresh_token=box.encrypt(tokens.refresh_token),
        id_token=box.encrypt(tokens.id_token),
        access_expires_at=tokens.access_expires_at,
        last_refresh_at=now,
        updated_at=now,
    )
    if row.status == "reauth_required":
        _change_status(db, row, "active", "token refreshed", 0.0, now)
    bump_roster_version(db)


@orm.db_session
def set_status(db: orm.Database, account_id: int, status: str, reason: str, until: float = 0.0) -> bool:
    """Change an account's state (recorded with its reason); False if it was already in that state."""
    if status not in STATUSES:
        raise ValueError(f"unknown account status {status!r}")
    row = db.Account.get(id=account_id)
    if row is None or (row.status == status and row.status_until == until):
        return False
    _change_status(db, row, status, reason, until, time.time())
    bump_roster_version(db)
    return True


@orm.db_session
def account_events(db: orm.Database, account_id: int, limit: int = 50) -> list[dict]:
    rows = db.AccountEvent.select(lambda e: e.account_id == account_id).order_by(lambda e: orm.desc(e.id))
    return [{"at": e.at, "from": e.from_status, "to": e.to_status, "reason": e.reason} for e in rows[:limit]]


def _change_status(db: orm.Database, row, status: str, reason: str, until: float, now: float) -> None:
    _record_event(db, row.id, row.status, status, reason, now)
    row.set(status=status, status_reason=reason, status_until=until, updated_at=now)


def _record_event(
    db: orm.Database, account_id: int, before: str, after: str, reason: str, now: float
) -> None:
    db.AccountEvent(account_id=account_id, at=now, from_status=before, to_status=after, reason=reason[:500])
