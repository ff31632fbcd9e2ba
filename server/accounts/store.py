"""Account rows: the only code that writes them. Synchronous @db_session functions run through db.run.

Tokens are stored as SecretBox ciphertexts; every change bumps the `roster` change marker so workers
and replicas reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import orjson
from pony import orm

from server.accounts.authjson import Credentials
from server.balancer.policies import NORMAL, RoutingPolicy
from server.balancer.slots import DEFAULT_CAPACITY
from server.runtime import leases
from server.runtime.change_marker import bump_roster_version
from server.runtime.secretbox import SecretBox

HISTORY_SPACING_S = 240.0
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
    usage_snapshot: str = ""
    usage_polled_at: float = 0.0
    routing_policy: str = NORMAL
    reserve_percent: float = 0.0


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
    label: str = ""
    access_expires_at: float = 0.0
    usage_snapshot: str = ""
    usage_polled_at: float = 0.0
    status_since: float = 0.0  # when the current status was entered
    routing_policy: str = NORMAL
    reserve_percent: float = 0.0

    def public(self) -> dict:
        return {
            "id": self.id,
            "chatgpt_account_id": self.chatgpt_account_id,
            "label": self.label,
            "email": self.email,
            "plan_type": self.plan_type,
            "status": self.status,
            "status_reason": self.status_reason,
            "status_until": self.status_until or None,
            "status_since": self.status_since or None,
            "slot": self.slot,
            "created_at": self.created_at,
            "last_refresh_at": self.last_refresh_at or None,
            "access_expires_at": self.access_expires_at or None,
            "usage": orjson.loads(self.usage_snapshot) if self.usage_snapshot else None,
            "usage_polled_at": self.usage_polled_at or None,
            "routing_policy": self.routing_policy,
            "reserve_percent": self.reserve_percent,
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


def _summary(row, status_since: float = 0.0) -> AccountSummary:
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
        label=row.label,
        access_expires_at=row.access_expires_at,
        usage_snapshot=row.usage_snapshot,
        usage_polled_at=row.usage_polled_at,
        status_since=status_since,
        routing_policy=row.routing_policy,
        reserve_percent=row.reserve_percent,
    )


@orm.db_session(retry=5)
def upsert_credentials(
    db: orm.Database, creds: Credentials, box: SecretBox, capacity: int = DEFAULT_CAPACITY
) -> UpsertResult:
    """Add an account, or refresh the tokens of the one with the same ChatGPT account id."""
    return _upsert(db, creds, box, capacity)


def _upsert(
    db: orm.Database, creds: Credentials, box: SecretBox, capacity: int = DEFAULT_CAPACITY
) -> UpsertResult:
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
            slot=_free_slot(db, capacity),
            access_expires_at=creds.access_expires_at,
            last_refresh_at=creds.last_refresh_at,
            created_at=now,
            updated_at=now,
            **sealed,
        )
        row.flush()
        _record_event(db, row.id, "", "active", f"added ({creds.source})", now)
    else:
        row.set(
            email=creds.email or row.email,
            plan_type=creds.plan_type or row.plan_type,
            access_expires_at=creds.access_expires_at,
            last_refresh_at=max(creds.last_refresh_at, row.last_refresh_at),
            updated_at=now,
            **sealed,
        )
        if row.status in ("reauth_required", "deactivated"):
            _change_status(db, row, "active", f"new credentials ({creds.source})", 0.0, now)
    _changed(db, row.id)
    return UpsertResult(_summary(row), created)


def _free_slot(db: orm.Database, capacity: int) -> int:
    # Every account holds one row of the shared-memory slot table for its life, so the table's size
    # (CODEX_LB_MAX_ACCOUNTS) is the pool's limit.
    used = set(orm.select(a.slot for a in db.Account)[:])
    for slot in range(capacity):
        if slot not in used:
            return slot
    raise PoolFull(capacity)


_SUMMARY_TEXTS = (
    "chatgpt_account_id",
    "email",
    "plan_type",
    "status",
    "status_reason",
    "label",
    "usage_snapshot",
)
_SUMMARY_NUMBERS = ("status_until", "created_at", "last_refresh_at", "access_expires_at", "usage_polled_at")


@orm.db_session
def list_accounts(db: orm.Database) -> list[AccountSummary]:
    """Every account as the API shows it. Plain columns, not Pony entities: building 500 entities (and
    reading their sealed tokens) took 75 ms, the columns take a few."""
    since = dict(
        db.select("SELECT account_id, MAX(at) FROM account_event WHERE kind = 'state' GROUP BY account_id")
    )
    texts, numbers = len(_SUMMARY_TEXTS), len(_SUMMARY_NUMBERS)
    columns = ", ".join(
        ("id", "slot", "routing_policy", "reserve_percent", *_SUMMARY_TEXTS, *_SUMMARY_NUMBERS)
    )
    summaries = []
    for row in db.select(f"SELECT {columns} FROM account ORDER BY id"):
        account_id = int(row[0])
        summaries.append(
            AccountSummary(
                id=account_id,
                slot=int(row[1]),
                routing_policy=row[2] or NORMAL,
                reserve_percent=float(row[3] or 0.0),
                status_since=float(since.get(account_id) or 0.0),
                **{name: value or "" for name, value in zip(_SUMMARY_TEXTS, row[4 : 4 + texts], strict=True)},
                **{
                    name: float(value or 0.0)
                    for name, value in zip(
                        _SUMMARY_NUMBERS, row[4 + texts : 4 + texts + numbers], strict=True
                    )
                },
            )
        )
    return summaries


# AccountSummary.public()'s fields in its order, and when the account entered its status: the newest
# 'state' event, found by walking the (account_id, at) index backwards rather than grouping every event.
_PUBLIC_SELECT = (
    "SELECT a.id, a.chatgpt_account_id, a.label, a.email, a.plan_type, a.status, a.status_reason, "
    "a.status_until, a.slot, a.created_at, a.last_refresh_at, a.access_expires_at, a.usage_snapshot, "
    "a.usage_polled_at, a.routing_policy, a.reserve_percent, "
    "(SELECT e.at FROM account_event e WHERE e.account_id = a.id AND e.kind = 'state' "
    "ORDER BY e.at DESC LIMIT 1) "
    "FROM account a ORDER BY a.id"
)


@orm.db_session
def public_accounts(db: orm.Database) -> list[dict]:
    """Every account as GET /api/accounts shows it (AccountSummary.public() of each), built straight from
    the selected rows, its usage snapshot passed through as the stored JSON (an orjson.Fragment, for
    orjson.dumps). At 500 accounts the dataclasses between rows and dicts, and parsing every snapshot only
    to encode it again, cost more than the SELECT."""
    return [
        {
            "id": int(account_id),
            "chatgpt_account_id": chatgpt_account_id or "",
            "label": label or "",
            "email": email or "",
            "plan_type": plan_type or "",
            "status": status or "",
            "status_reason": status_reason or "",
            "status_until": float(status_until) if status_until else None,
            "status_since": float(status_since) if status_since else None,
            "slot": int(slot),
            "created_at": float(created_at or 0.0),
            "last_refresh_at": float(last_refresh_at) if last_refresh_at else None,
            "access_expires_at": float(access_expires_at) if access_expires_at else None,
            "usage": orjson.Fragment(snapshot) if snapshot else None,
            "usage_polled_at": float(usage_polled_at) if usage_polled_at else None,
            "routing_policy": routing_policy or NORMAL,
            "reserve_percent": float(reserve_percent or 0.0),
        }
        for (
            account_id,
            chatgpt_account_id,
            label,
            email,
            plan_type,
            status,
            status_reason,
            status_until,
            slot,
            created_at,
            last_refresh_at,
            access_expires_at,
            snapshot,
            usage_polled_at,
            routing_policy,
            reserve_percent,
            status_since,
        ) in db.execute(_PUBLIC_SELECT).fetchall()
    ]


_ROSTER_COLUMNS = (
    "id, chatgpt_account_id, email, plan_type, status, status_reason, status_until, slot, access_token, "
    "access_expires_at, usage_snapshot, usage_polled_at, routing_policy, reserve_percent"
)


def _changed(db: orm.Database, *account_ids: int) -> None:
    """Inside the db_session that changed these accounts: bump the change marker and stamp the rows with
    its new version, so a worker's reload reads only the rows stamped after the version it last saw. The
    marker row stays locked (PostgreSQL) or the database is written (SQLite) until commit, so stamps
    commit in the order of their versions: a reader that saw version V sees every row stamped V or less."""
    bump_roster_version(db)
    ids = ", ".join(str(int(i)) for i in sorted(set(account_ids)))
    db.execute(
        "UPDATE account SET change_seq = (SELECT version FROM change_marker WHERE name = 'roster') "
        f"WHERE id IN ({ids})"
    )


@dataclass(frozen=True, slots=True)
class RosterChanges:
    """What a reload reads: the accounts stamped after the version it asked from (all of them from -1),
    the marker's version to ask from next time, and how many accounts there are (fewer than the worker
    would hold after merging means some were deleted)."""

    version: int
    count: int
    records: list[AccountRecord]


@orm.db_session
def load_roster_changes(
    db: orm.Database, box: SecretBox, decrypted: dict[str, str], since: int
) -> RosterChanges:
    """The accounts changed since version `since`, ready for routing. `decrypted` (sealed token -> token)
    is the caller's memory of tokens it has opened: only new or changed tokens are decrypted. Every worker
    reloads after every import, so each reload costs the changed rows, not the pool."""
    version = int(db.select("SELECT version FROM change_marker WHERE name = 'roster'")[0])
    count = int(db.select("SELECT COUNT(*) FROM account")[0])
    records, seen = [], set()
    rows = db.select(
        f"SELECT {_ROSTER_COLUMNS} FROM account WHERE change_seq > $since ORDER BY id", {}, {"since": since}
    )
    for row in rows:
        sealed = row[8]
        seen.add(sealed)
        token = decrypted.get(sealed)
        if token is None:
            token = decrypted[sealed] = box.decrypt(sealed)
        records.append(
            AccountRecord(
                id=int(row[0]),
                chatgpt_account_id=row[1],
                email=row[2] or "",
                plan_type=row[3] or "",
                status=row[4],
                status_reason=row[5] or "",
                status_until=float(row[6]),
                slot=int(row[7]),
                access_token=token,
                access_expires_at=float(row[9]),
                usage_snapshot=row[10] or "",
                usage_polled_at=float(row[11] or 0.0),
                routing_policy=row[12] or NORMAL,
                reserve_percent=float(row[13] or 0.0),
            )
        )
    if since < 0 and len(decrypted) > len(seen):  # a full read: forget refreshed or deleted accounts' tokens
        for sealed in decrypted.keys() - seen:
            del decrypted[sealed]
    return RosterChanges(version, count, records)


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
    _changed(db, row.id)


@orm.db_session
def set_status(db: orm.Database, account_id: int, status: str, reason: str, until: float = 0.0) -> bool:
    """Change an account's state (recorded with its reason); False if it was already in that state."""
    if status not in STATUSES:
        raise ValueError(f"unknown account status {status!r}")
    row = db.Account.get(id=account_id)
    if row is None or (row.status == status and row.status_until == until):
        return False
    _change_status(db, row, status, reason, until, time.time())
    _changed(db, row.id)
    return True


@orm.db_session
def account_events(db: orm.Database, account_id: int, limit: int = 50) -> list[dict]:
    rows = db.AccountEvent.select(lambda e: e.account_id == account_id).order_by(lambda e: orm.desc(e.id))
    return [
        {"at": e.at, "kind": e.kind, "from": e.from_status, "to": e.to_status, "reason": e.reason}
        for e in rows[:limit]
    ]


def _change_status(db: orm.Database, row, status: str, reason: str, until: float, now: float) -> None:
    _record_event(db, row.id, row.status, status, reason, now)
    row.set(status=status, status_reason=reason, status_until=until, updated_at=now)


def _record_event(
    db: orm.Database, account_id: int, before: str, after: str, reason: str, now: float, kind: str = "state"
) -> None:
    db.AccountEvent(
        account_id=account_id, at=now, from_status=before, to_status=after, reason=reason[:500], kind=kind
    )


class AccountNotFound(LookupError):
    pass


class PoolFull(Exception):
    """Every slot is taken: a new account needs a deleted one's slot or a larger CODEX_LB_MAX_ACCOUNTS."""

    code = "pool_full"

    def __init__(self, capacity: int) -> None:
        super().__init__(
            f"the pool is full: codex-lb holds at most {capacity} accounts (CODEX_LB_MAX_ACCOUNTS);"
            " delete an account or raise CODEX_LB_MAX_ACCOUNTS and restart"
        )
        self.capacity = capacity


class AccountMismatch(ValueError):
    """A re-authentication signed in to a different ChatGPT account than the one being renewed."""


def _row(db: orm.Database, account_id: int):
    row = db.Account.get(id=account_id)
    if row is None:
        raise AccountNotFound(account_id)
    return row


@orm.db_session
def get_account(db: orm.Database, account_id: int) -> AccountSummary:
    since = db.select(
        "SELECT MAX(at) FROM account_event WHERE kind = 'state' AND account_id = $account_id",
        {},
        {"account_id": account_id},
    )
    return _summary(_row(db, account_id), since[0] or 0.0 if since else 0.0)


@orm.db_session(retry=5)
def replace_credentials(
    db: orm.Database, account_id: int, creds: Credentials, box: SecretBox
) -> UpsertResult:
    """Re-authentication: new tokens for an existing account, only if they are for the same account."""
    row = _row(db, account_id)
    if row.chatgpt_account_id != creds.chatgpt_account_id:
        raise AccountMismatch(
            f"signed in as a different ChatGPT account ({creds.email or creds.chatgpt_account_id});"
            " sign in with the account being re-authenticated"
        )
    return _upsert(db, creds, box)


@orm.db_session
def set_label(db: orm.Database, account_id: int, label: str) -> AccountSummary:
    row = _row(db, account_id)
    now = time.time()
    if row.label != label:
        _record_event(db, row.id, row.status, row.status, f"renamed to {label!r}", now, kind="audit")
        row.set(label=label, updated_at=now)
        _changed(db, row.id)
    return _summary(row)


@orm.db_session
def set_routing_policy(db: orm.Database, account_id: int, policy: RoutingPolicy) -> AccountSummary:
    """How the balancer treats the account from now on (recorded in its history)."""
    row = _row(db, account_id)
    if (row.routing_policy, row.reserve_percent) != (policy.policy, policy.reserve_percent):
        now = time.time()
        reason = f"routing policy: {policy.describe()}"
        _record_event(db, row.id, row.status, row.status, reason, now, kind="audit")
        row.set(routing_policy=policy.policy, reserve_percent=policy.reserve_percent, updated_at=now)
        _changed(db, row.id)
    return _summary(row)


@orm.db_session
def record_audit(db: orm.Database, account_id: int, action: str) -> None:
    row = _row(db, account_id)
    _record_event(db, row.id, row.status, row.status, action, time.time(), kind="audit")


@orm.db_session
def delete_account(db: orm.Database, account_id: int) -> AccountSummary:
    """Remove the account and its tokens. Request logs keep its numeric id, which is never reused and
    no longer leads to any identity; its state history and usage history go with it."""
    row = _row(db, account_id)
    summary = _summary(row)
    db.execute("DELETE FROM account_event WHERE account_id = $account_id", {}, {"account_id": account_id})
    db.execute("DELETE FROM account_usage WHERE account_id = $account_id", {}, {"account_id": account_id})
    row.delete()
    bump_roster_version(db)  # a deleted account has no row to stamp: reloads notice the count drop
    return summary


@orm.db_session
def resume(db: orm.Database, account_id: int) -> AccountSummary:
    """Back to active from paused (or any other state: an operator's "try it again")."""
    row = _row(db, account_id)
    if row.status != "active":
        _change_status(db, row, "active", "resumed by the operator", 0.0, time.time())
        _changed(db, row.id)
    return _summary(row)


@orm.db_session
def pause(db: orm.Database, account_id: int) -> AccountSummary:
    row = _row(db, account_id)
    if row.status != "paused":
        _change_status(db, row, "paused", "paused by the operator", 0.0, time.time())
        _changed(db, row.id)
    return _summary(row)


@orm.db_session
def expire_statuses(db: orm.Database, now: float) -> list[int]:
    """rate_limited / quota_exceeded accounts whose reset time has passed become active again."""
    rows = db.Account.select(
        lambda a: (
            a.status in ("rate_limited", "quota_exceeded") and a.status_until > 0 and a.status_until <= now
        )
    )[:]
    for row in rows:
        _change_status(db, row, "active", f"{row.status} ended (reset time passed)", 0.0, now)
    if rows:
        _changed(db, *(row.id for row in rows))
    return [row.id for row in rows]


@dataclass(frozen=True, slots=True)
class PollTarget:
    id: int
    chatgpt_account_id: str
    slot: int
    status: str
    access_token: str


@orm.db_session
def poll_targets(db: orm.Database, box: SecretBox, only: Collection[int] | None = None) -> list[PollTarget]:
    """Accounts whose usage is worth polling: not paused, not waiting for a sign-in, not gone (of `only`,
    when given: only their rows are read). The poll job asks every few seconds for the few accounts due,
    so it reads plain columns of those rows, not a Pony entity of every account (75 ms at 500)."""
    where = "status IN ('active', 'rate_limited', 'quota_exceeded')"
    if only is not None:
        if not only:
            return []
        where += f" AND id IN ({', '.join(str(int(i)) for i in sorted(set(only)))})"
    rows = db.select(
        f"SELECT id, chatgpt_account_id, slot, status, access_token FROM account WHERE {where} ORDER BY id"
    )
    return [PollTarget(int(r[0]), r[1], int(r[2]), r[3], box.decrypt(r[4])) for r in rows]


@orm.db_session
def poll_target_ids(db: orm.Database) -> list[int]:
    rows = db.select("SELECT id FROM account WHERE status IN ('active', 'rate_limited', 'quota_exceeded')")
    return [int(account_id) for account_id in rows]


@orm.db_session
def refresh_due(db: orm.Database, box: SecretBox, before: float) -> list[PollTarget]:
    """Accounts whose access token expires before `before` (and can still be refreshed)."""
    rows = db.Account.select(
        lambda a: (
            a.status not in ("reauth_required", "deactivated")
            and a.access_expires_at > 0
            and a.access_expires_at < before
        )
    )
    return [
        PollTarget(r.id, r.chatgpt_account_id, r.slot, r.status, box.decrypt(r.access_token))
        for r in rows.order_by(lambda a: a.id)
    ]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One poll for the history table (None: the window was not reported)."""

    primary_used: float | None
    primary_window_minutes: int | None
    primary_reset_at: float | None
    secondary_used: float | None
    secondary_window_minutes: int | None
    secondary_reset_at: float | None
    credits_balance: float | None


@dataclass(frozen=True, slots=True)
class PolledUsage:
    """One account's answered usage poll, as the store keeps it. `decide(status, status_until)` may
    change the state (returns (status, reason, until) or None)."""

    account_id: int
    snapshot_json: str
    history: UsageRow
    plan_type: str | None
    decide: Callable[[str, float], tuple[str, str, float] | None]
    at: float


@dataclass(frozen=True, slots=True)
class SavedUsage:
    """What storing a tick's polls did: each stored account's status afterwards (a deleted account is
    left out), and the accounts whose state or plan changed (stamped for every worker's roster)."""

    statuses: dict[int, str]
    changed: tuple[int, ...]


@orm.db_session(retry=3)
def save_usage(db: orm.Database, polls: list[PolledUsage]) -> SavedUsage:
    """Store a poll tick's answers in one transaction: each account's latest snapshot, a history row
    where the last is older than HISTORY_SPACING_S, and the states they decide.

    One transaction for the tick, not one per account: at 500 accounts (8 polls a second in the first
    interval) a commit, a history COUNT and a change-marker bump per poll cost ~12 ms/s of idle CPU.
    Only accounts whose state or plan changed bump the change marker (a reload of everything in every
    worker); a poll that moved only the usage reaches workers and replicas through usage_polled_at
    (server.sync.reloader: a re-read of the polled rows' usage)."""
    if not polls:
        return SavedUsage({}, ())
    ids = ", ".join(str(int(p.account_id)) for p in polls)
    rows = {
        int(r[0]): (r[1], float(r[2] or 0.0), r[3] or "")
        for r in db.select(f"SELECT id, status, status_until, plan_type FROM account WHERE id IN ({ids})")
    }
    oldest = min(p.at for p in polls) - HISTORY_SPACING_S
    last_point = dict(
        db.select(
            f"SELECT account_id, MAX(at) FROM account_usage WHERE at > $oldest AND account_id IN ({ids}) "
            "GROUP BY account_id",
            {},
            {"oldest": oldest},
        )
    )
    known = [poll for poll in polls if poll.account_id in rows]
    replanned = {
        poll.account_id for poll in known if poll.plan_type and poll.plan_type != rows[poll.account_id][2]
    }
    _write_snapshots(
        db,
        [
            (
                poll.account_id,
                poll.snapshot_json,
                poll.at,
                poll.plan_type if poll.account_id in replanned else rows[poll.account_id][2],
            )
            for poll in known
        ],
    )
    # trends need one point per few minutes, not one per poll
    _write_history(
        db,
        [
            poll
            for poll in known
            if float(last_point.get(poll.account_id) or 0.0) <= poll.at - HISTORY_SPACING_S
        ],
    )
    statuses, changed = {}, []
    for poll in known:
        status, status_until, _ = rows[poll.account_id]
        change = poll.decide(status, status_until)
        if change is not None:
            status, reason, until = change
            _change_status(db, db.Account[poll.account_id], status, reason, until, poll.at)
        if change is not None or poll.account_id in replanned:
            changed.append(poll.account_id)
        statuses[poll.account_id] = status
    if changed:
        _changed(db, *changed)
    return SavedUsage(statuses, tuple(changed))


def _write_snapshots(db: orm.Database, rows: list[tuple[int, str, float, str]]) -> None:
    """(account id, snapshot, polled at, plan) of each polled account: an UPDATE per run of rows, not
    one per account (a PostgreSQL round trip each, ~11 % of an idle 500-account proxy's CPU)."""
    for run in _runs(rows):
        params = {f"v{n}_{k}": value for n, row in enumerate(run) for k, value in enumerate(row)}
        values = ", ".join(f"($v{n}_0, $v{n}_1, $v{n}_2, $v{n}_3)" for n in range(len(run)))
        db.execute(
            "UPDATE account SET usage_snapshot = v.column2, usage_polled_at = v.column3, "
            f"plan_type = v.column4 FROM (VALUES {values}) AS v WHERE account.id = v.column1",
            {},
            params,
        )


_HISTORY_COLUMNS = ("account_id", "at", *UsageRow.__slots__)


def _write_history(db: orm.Database, polls: list[PolledUsage]) -> None:
    """A history row for each of these polls: one INSERT per run of rows, not one per account."""
    for run in _runs(polls):
        params = {}
        for n, poll in enumerate(run):
            row = (poll.account_id, poll.at, *(getattr(poll.history, k) for k in UsageRow.__slots__))
            params.update({f"h{n}_{k}": value for k, value in enumerate(row)})
        width = len(_HISTORY_COLUMNS)
        values = ", ".join("(" + ", ".join(f"$h{n}_{k}" for k in range(width)) + ")" for n in range(len(run)))
        db.execute(f"INSERT INTO account_usage ({', '.join(_HISTORY_COLUMNS)}) VALUES {values}", {}, params)


def _runs(items: list, most: int = 64) -> list[list]:
    """`items` cut into runs of power-of-two lengths (40: 32 and 8): one statement per run, and at most
    seven statement texts for Pony to parse and keep."""
    runs, start = [], 0
    while start < len(items):
        size = min(most, 1 << ((len(items) - start).bit_length() - 1))
        runs.append(items[start : start + size])
        start += size
    return runs


@dataclass(frozen=True, slots=True)
class PolledSnapshot:
    id: int
    usage_snapshot: str
    usage_polled_at: float


@orm.db_session
def polled_since(db: orm.Database, since: float) -> list[PolledSnapshot]:
    """The usage snapshots polled after `since` (a worker's re-read after a usage-only poll)."""
    rows = db.select(
        "SELECT id, usage_snapshot, usage_polled_at FROM account WHERE usage_polled_at > $since",
        {},
        {"since": since},
    )
    return [PolledSnapshot(int(r[0]), r[1] or "", float(r[2])) for r in rows]


@orm.db_session
def usage_history(db: orm.Database, account_id: int, since: float) -> list[dict]:
    rows = db.AccountUsage.select(lambda u: u.account_id == account_id and u.at >= since).order_by(
        lambda u: u.at
    )
    return [{"at": u.at, **{k: getattr(u, k) for k in UsageRow.__slots__}} for u in rows]


@orm.db_session
def prune_usage_history(db: orm.Database, before: float) -> int:
    cursor = db.execute("DELETE FROM account_usage WHERE at < $before", {}, {"before": before})
    return cursor.rowcount
