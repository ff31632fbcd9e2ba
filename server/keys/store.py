"""API-key rows and their limit rules: the only code that writes them.

Synchronous @db_session functions (run through db.run) returning plain records; every change bumps
the change marker so every worker and replica reloads its key cache within a couple of seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from pony import orm

from server.change_marker import bump_roster_version
from server.errors import BadRequest, NotFound
from server.keys import secret
from server.keys.spec import KeySpec, LimitSpec
from server.keys.windows import bounds, iso


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


@dataclass(frozen=True, slots=True)
class KeyTotals:
    request_count: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    last_used_at: float | None = None
    refused_count: int = 0


# Error codes of requests a key's own rules refused (request-log rows with no attempt).
REFUSAL_CODES = ("api_key_limit_reached", "model_not_allowed", "reasoning_effort_not_allowed")


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
    simple = {name: changes[name] for name in ("name", "enabled", "expires_at") if name in changes}
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
    rows = db.select(
        "SELECT limit_id, window_start, used, reserved FROM api_key_counter WHERE window_end > $now",
        {},
        {"now": now},
    )
    wanted = set(limit_ids)
    return {
        (int(r[0]), int(r[1])): WindowUsage(float(r[2]), float(r[3])) for r in rows if int(r[0]) in wanted
    }


@orm.db_session
def totals(db: orm.Database, key_ids: list[int]) -> dict[int, KeyTotals]:
    """All-time usage per key from the request log (requests made with it, tokens, cost, last use)."""
    if not key_ids:
        return {}
    # Served: requests that reached an account. Refused: requests the key's own rules turned away (its
    # limits, models, efforts); other failures (a bad body, an empty pool) are neither.
    refused = ", ".join(f"'{code}'" for code in REFUSAL_CODES)
    rows = db.select(
        "SELECT api_key_id, COUNT(CASE WHEN attempts > 0 THEN 1 END), COALESCE(SUM(total_tokens), 0), "
        "COALESCE(SUM(cached_input_tokens), 0), COALESCE(SUM(cost_usd), 0), "
        "MAX(CASE WHEN attempts > 0 THEN started_at END), "
        f"COUNT(CASE WHEN attempts = 0 AND error_code IN ({refused}) THEN 1 END) "
        # Only the wanted keys' rows, read through request_log_key_totals (an index holding every
        # column summed here): one key's figures cost its own rows, not the whole log's.
        f"FROM request_log WHERE api_key_id IN ({', '.join(str(int(k)) for k in set(key_ids))}) "
        "GROUP BY api_key_id"
    )
    return {
        int(r[0]): KeyTotals(
            int(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5]) if r[5] else None, int(r[6])
        )
        for r in rows
    }
