"""API-key rows and their limit rules: the only code that writes them.

Synchronous @db_session functions (run through db.run) returning plain records; every change bumps
the change marker so every worker and replica reloads its key cache within a couple of seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from pony import orm

from server.errors import BadRequest, NotFound
from server.keys import secret
from server.keys.spec import KeySpec, LimitSpec
from server.keys.windows import bounds, iso
from server.runtime.change_marker import bump_roster_version
from server.usage import key_totals as totals
from server.usage.key_totals import KeyTotals


@dataclass(frozen=True, slots=True)
class LimitRule:
    id: int
    quantity: str  # tokens | cost_usd | requests
    window: str  # minute | hour | day | week | month (calendar, UTC)
    max_value: float
    model: str  # '' = every model

    def applies_to(self, model: str) -> bool:
        return not self.model or self.model == model.lower()

    def describe(self) -> str:
        number = int(self.max_value) if self.max_value == int(self.max_value) else self.max_value
        amount = f"${number}" if self.quantity == "cost_usd" else f"{number} {self.quantity}"
        scope = f" on {self.model}" if self.model else ""
        return f"{amount} per {self.window}{scope}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as the proxy sees it (held in memory by every worker): no secret, only its digest."""

    id: int
    name: str
    key_prefix: str
    key_hash: str
    enabled: bool
    expires_at: float | None
    allowed_models: frozenset[str] | None
    allowed_efforts: frozenset[str] | None
    allowed_accounts: frozenset[int] | None
    limits: tuple[LimitRule, ...]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class WindowUsage:
    used: float
    reserved: float


def public(
    key: KeyRecord,
    usage: dict[tuple[int, int], WindowUsage],
    totals: KeyTotals,
    now: float,
    secret_key: str | None = None,
) -> dict:
    """The API's view of a key; the full secret only right after it was made."""
    answer = {
        "id": key.id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "enabled": key.enabled,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
        "expires_at": key.expires_at,
        "last_used_at": totals.last_used_at,
        "allowed_models": sorted(key.allowed_models) if key.allowed_models is not None else None,
        "allowed_reasoning_efforts": sorted(key.allowed_efforts) if key.allowed_efforts is not None else None,
        "allowed_account_ids": sorted(key.allowed_accounts) if key.allowed_accounts is not None else None,
        "limits": [limit_status(rule, usage, now) for rule in key.limits],
        "usage": {
            "request_count": totals.request_count,
            "refused_count": totals.refused_count,
            "total_tokens": totals.total_tokens,
            "cached_input_tokens": totals.cached_input_tokens,
            "cost_usd": round(totals.cost_usd, 6),
        },
    }
    if secret_key is not None:
        answer["key"] = secret_key
    return answer


def limit_status(rule: LimitRule, usage: dict[tuple[int, int], WindowUsage], now: float) -> dict:
    start, end = bounds(rule.window, now)
    current = usage.get((rule.id, start), WindowUsage(0.0, 0.0))
    return {
        "id": rule.id,
        "quantity": rule.quantity,
        "window": rule.window,
        "window_kind": "calendar",
        "max": rule.max_value,
        "model": rule.model or None,
        "used": current.used,
        "reserved": current.reserved,
        "remaining": max(0.0, rule.max_value - current.used - current.reserved),
        "window_start": iso(start),
        "resets_at": iso(end),
    }


def _json_list(values) -> str:
    return "" if values is None else orjson.dumps(list(values)).decode()


def _frozen(raw: str, kind=str):
    return None if not raw else frozenset(kind(v) for v in orjson.loads(raw))


def _record(row, rules) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        key_prefix=row.key_prefix,
        key_hash=row.key_hash,
        enabled=row.enabled,
        expires_at=row.expires_at,
        allowed_models=_frozen(row.allowed_models),
        allowed_efforts=_frozen(row.allowed_efforts),
        allowed_accounts=_frozen(row.allowed_accounts, int),
        limits=tuple(
            LimitRule(r.id, r.quantity, r.time_window, r.max_value, r.model)
            for r in sorted(rules, key=lambda r: r.id)
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@orm.db_session
def load_keys(db: orm.Database) -> list[KeyRecord]:
    rules: dict[int, list] = {}
    for rule in db.ApiKeyLimit.select():
        rules.setdefault(rule.api_key_id, []).append(rule)
    return [_record(row, rules.get(row.id, [])) for row in db.ApiKey.select().order_by(lambda k: k.id)]


@orm.db_session
def load_key_by_hash(db: orm.Database, key_hash: str) -> KeyRecord | None:
    """One key by the digest of its secret (a key this worker's copy does not know yet)."""
    row = db.ApiKey.get(key_hash=key_hash)
    if row is None:
        return None
    return _record(row, list(db.ApiKeyLimit.select(lambda r: r.api_key_id == row.id)))


def _check_accounts(db: orm.Database, ids) -> None:
    if ids is None:
        return
    known = set(orm.select(a.id for a in db.Account)[:])
    missing = [i for i in ids if i not in known]
    if missing:
        raise BadRequest(
            f"'allowed_account_ids' names account {missing[0]}, which is not in the pool.",
            param="allowed_account_ids",
            code="invalid_api_key_spec",
        )


def _apply(db: orm.Database, row, spec: KeySpec, now: float) -> None:
    changes = spec.changes
    # The columns to set: the simple fields as given, the lists as JSON text.
    simple: dict[str, Any] = {n: changes[n] for n in ("name", "enabled", "expires_at") if n in changes}
    if "allowed_models" in changes:
        simple["allowed_models"] = _json_list(changes["allowed_models"])
    if "allowed_reasoning_efforts" in changes:
        simple["allowed_efforts"] = _json_list(changes["allowed_reasoning_efforts"])
    if "allowed_account_ids" in changes:
        _check_accounts(db, changes["allowed_account_ids"])
        simple["allowed_accounts"] = _json_list(changes["allowed_account_ids"])
    row.set(updated_at=now, **simple)
    if "limits" in changes:
        _replace_limits(db, row.id, changes["limits"])


def _replace_limits(db: orm.Database, key_id: int, wanted: tuple[LimitSpec, ...]) -> None:
    """Rules with the same quantity, window and model keep their id (and so their counters)."""
    existing = {(r.quantity, r.time_window, r.model): r for r in db.ApiKeyLimit.select(api_key_id=key_id)}
    for spec in wanted:
        row = existing.pop(spec.identity, None)
        if row is None:
            db.ApiKeyLimit(
                api_key_id=key_id,
                quantity=spec.quantity,
                time_window=spec.window,
                max_value=spec.max_value,
                model=spec.model,
            )
        else:
            row.max_value = spec.max_value
    for row in existing.values():
        _forget_counters(db, row.id)
        row.delete()


def _forget_counters(db: orm.Database, limit_id: int) -> None:
    db.execute("DELETE FROM api_key_counter WHERE limit_id = $limit_id", {}, {"limit_id": limit_id})
    db.execute("DELETE FROM api_key_reservation WHERE limit_id = $limit_id", {}, {"limit_id": limit_id})


@orm.db_session
def create(db: orm.Database, spec: KeySpec) -> tuple[KeyRecord, str]:
    """A new key and its secret (the only time the secret exists outside the client)."""
    now = time.time()
    key = secret.new_key()
    row = db.ApiKey(
        name=spec.changes["name"],
        key_prefix=secret.display_prefix(key),
        key_hash=secret.digest(key),
        created_at=now,
        updated_at=now,
    )
    row.flush()
    _apply(db, row, spec, now)
    orm.flush()
    bump_roster_version(db)
    return _record(row, db.ApiKeyLimit.select(api_key_id=row.id)[:]), key


def _row(db: orm.Database, key_id: int):
    row = db.ApiKey.get(id=key_id)
    if row is None:
        raise NotFound(f"No API key with id {key_id}.", code="not_found")
    return row


@orm.db_session
def update(db: orm.Database, key_id: int, spec: KeySpec) -> KeyRecord:
    row = _row(db, key_id)
    _apply(db, row, spec, time.time())
    orm.flush()
    bump_roster_version(db)
    return _record(row, db.ApiKeyLimit.select(api_key_id=row.id)[:])


@orm.db_session
def regenerate(db: orm.Database, key_id: int) -> tuple[KeyRecord, str]:
    """A new secret for the same key (same limits and counters); the old secret stops working."""
    row = _row(db, key_id)
    key = secret.new_key()
    row.set(key_prefix=secret.display_prefix(key), key_hash=secret.digest(key), updated_at=time.time())
    bump_roster_version(db)
    return _record(row, db.ApiKeyLimit.select(api_key_id=row.id)[:]), key


@orm.db_session
def delete(db: orm.Database, key_id: int) -> None:
    row = _row(db, key_id)
    totals.forget(db, key_id)
    for rule in db.ApiKeyLimit.select(api_key_id=key_id):
        _forget_counters(db, rule.id)
        rule.delete()
    row.delete()
    bump_roster_version(db)


@orm.db_session
def current_usage(db: orm.Database, limit_ids: list[int], now: float) -> dict[tuple[int, int], WindowUsage]:
    """Counters of windows still open, keyed by (limit id, window start)."""
    if not limit_ids:
        return {}
    wanted = ", ".join(str(int(i)) for i in sorted(set(limit_ids)))
    rows = db.select(
        "SELECT limit_id, window_start, used, reserved FROM api_key_counter "
        f"WHERE limit_id IN ({wanted}) AND window_end > $now",
        {},
        {"now": now},
    )
    return {(int(r[0]), int(r[1])): WindowUsage(float(r[2]), float(r[3])) for r in rows}


@orm.db_session
def figures(
    db: orm.Database, keys: list[KeyRecord], now: float
) -> tuple[dict[tuple[int, int], WindowUsage], dict[int, KeyTotals]]:
    """What the API shows of these keys, in one trip: their rules' open windows and all-time totals."""
    limit_ids = [rule.id for key in keys for rule in key.limits]
    return current_usage(db, limit_ids, now), totals.read(db, [key.id for key in keys])


@orm.db_session
def describe(db: orm.Database, keys: list[KeyRecord], now: float) -> list[dict]:
    """The API's view of each of these keys (GET /api/api-keys, `codex-lb keys list --json`)."""
    usage, figures_of = figures(db, keys, now)
    return [public(key, usage, figures_of.get(key.id, KeyTotals()), now) for key in keys]
