"""Egress proxy rows and account routes: the only code that writes them. Synchronous @db_session
functions run through db.run; credentials are SecretBox ciphertexts; every change bumps the roster
marker so workers and replicas reload their routes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pony import orm

from server.runtime.change_marker import bump_roster_version
from server.runtime.control_characters import has_control_characters
from server.runtime.secretbox import SecretBox

SCHEMES = ("http", "https", "socks5")


class EgressError(ValueError):
    """A proxy definition or binding that cannot be stored; the message says why, `field` names what."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ProxySpec:
    name: str
    url: str  # scheme://host:port, no credentials
    username: str = ""
    password: str = ""
    pool: str = ""
    weight: int = 1

    @classmethod
    def parse(
        cls, name: str, url: str, pool: str = "", weight: int = 1, username: str = "", password: str = ""
    ):
        name = (name or "").strip()
        if not name or len(name) > 64 or ":" in name or has_control_characters(name):
            raise EgressError("name: 1-64 characters, no ':' and no control characters", "name")
        parts = urlsplit((url or "").strip())
        scheme = "socks5" if parts.scheme == "socks5h" else parts.scheme
        if scheme not in SCHEMES:
            raise EgressError("url: must start with http://, https:// or socks5://")
        try:
            port = parts.port
        except ValueError:
            raise EgressError("url: the port is not a number") from None
        if not parts.hostname or port is None:
            raise EgressError("url: needs a host and a port, e.g. socks5://10.0.0.2:1080")
        if parts.path not in ("", "/") or parts.query:
            raise EgressError("url: a proxy URL has no path or query")
        username = username or unquote(parts.username or "")
        password = password or unquote(parts.password or "")
        if not isinstance(weight, int) or not 1 <= weight <= 1000:
            raise EgressError("weight: a whole number from 1 to 1000")
        pool = _pool_name(pool)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(name, f"{scheme}://{host}:{port}", username, password, pool, weight)


@dataclass(frozen=True, slots=True)
class ProxyRecord:
    """What a worker keeps: the proxy with its credentials in the clear (memory only)."""

    id: int
    name: str
    url: str
    username: str
    password: str
    pool: str
    weight: int
    check_ok: bool
    check_detail: str
    checked_at: float
    exit_address: str
    latency_ms: float

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "has_credentials": bool(self.username or self.password),
            "username": self.username,
            "pool": self.pool,
            "weight": self.weight,
            "check": {
                "ok": self.check_ok,
                "detail": self.check_detail,
                "checked_at": self.checked_at or None,
                "exit_address": self.exit_address or None,
                "latency_ms": round(self.latency_ms, 1) if self.checked_at else None,
            },
        }


@dataclass(frozen=True, slots=True)
class Binding:
    """An account's route: one proxy (proxy_id) or a pool (pool); neither means direct."""

    account_id: int
    proxy_id: int | None
    pool: str

    def describe(self, names: dict[int, str]) -> str:
        if self.proxy_id is not None:
            return f"proxy:{names.get(self.proxy_id, self.proxy_id)}"
        return f"pool:{self.pool}" if self.pool else "direct"


def _pool_name(pool: str | None) -> str:
    pool = (pool or "").strip()
    if len(pool) > 64 or has_control_characters(pool):
        raise EgressError("pool: at most 64 characters, no control characters", "pool")
    return pool


def _record(row, box: SecretBox) -> ProxyRecord:
    return ProxyRecord(
        id=row.id,
        name=row.name,
        url=row.url,
        username=box.decrypt(row.username) if row.username else "",
        password=box.decrypt(row.password) if row.password else "",
        pool=row.pool,
        weight=row.weight,
        check_ok=row.check_ok,
        check_detail=row.check_detail,
        checked_at=row.checked_at,
        exit_address=row.exit_address,
        latency_ms=row.latency_ms,
    )


@orm.db_session
def load(db: orm.Database, box: SecretBox) -> tuple[list[ProxyRecord], list[Binding]]:
    proxies = [_record(p, box) for p in db.EgressProxy.select().order_by(lambda p: p.id)]
    bindings = [Binding(b.account_id, b.proxy_id, b.pool) for b in db.AccountEgress.select()]
    return proxies, bindings


@orm.db_session
def create(db: orm.Database, spec: ProxySpec, box: SecretBox) -> ProxyRecord:
    if db.EgressProxy.get(name=spec.name) is not None:
        raise EgressError(f"a proxy named {spec.name!r} exists already")
    row = db.EgressProxy(
        name=spec.name,
        url=spec.url,
        username=box.encrypt(spec.username) if spec.username else "",
        password=box.encrypt(spec.password) if spec.password else "",
        pool=spec.pool,
        weight=spec.weight,
        created_at=time.time(),
    )
    orm.flush()
    bump_roster_version(db)
    return _record(row, box)


@orm.db_session
def update(
    db: orm.Database, proxy_id: int, box: SecretBox, pool: str | None = None, weight: int | None = None
) -> ProxyRecord | None:
    row = db.EgressProxy.get(id=proxy_id)
    if row is None:
        return None
    if pool is not None:
        row.pool = _pool_name(pool)
    if weight is not None:
        if not 1 <= weight <= 1000:
            raise EgressError("weight: a whole number from 1 to 1000")
        row.weight = weight
    bump_roster_version(db)
    return _record(row, box)


@orm.db_session
def find(db: orm.Database, name_or_id: str) -> int | None:
    row = db.EgressProxy.get(name=name_or_id)
    if row is None and name_or_id.isdigit():
        row = db.EgressProxy.get(id=int(name_or_id))
    return row.id if row is not None else None


@orm.db_session
def delete(db: orm.Database, proxy_id: int) -> bool:
    """Remove a proxy. Accounts bound to it directly are refused: unbind them first (fail closed means a
    deleted proxy must not silently turn its accounts direct)."""
    row = db.EgressProxy.get(id=proxy_id)
    if row is None:
        return False
    bound = db.AccountEgress.select(lambda b: b.proxy_id == proxy_id).count()
    if bound:
        raise EgressError(f"{bound} account(s) are bound to this proxy: bind them elsewhere first")
    row.delete()
    bump_roster_version(db)
    return True


@orm.db_session
def bind(db: orm.Database, account_id: int, proxy_id: int | None = None, pool: str = "") -> Binding:
    """Bind an account to a proxy, a pool, or (neither) direct."""
    if db.Account.get(id=account_id) is None:
        raise LookupError(f"no account {account_id}")
    if proxy_id is not None and db.EgressProxy.get(id=proxy_id) is None:
        raise EgressError(f"no proxy {proxy_id}")
    if pool and not db.EgressProxy.exists(lambda p: p.pool == pool):
        raise EgressError(f"no proxy is in the pool {pool!r}")
    row = db.AccountEgress.get(account_id=account_id)
    if proxy_id is None and not pool:
        if row is not None:
            row.delete()
    elif row is None:
        db.AccountEgress(account_id=account_id, proxy_id=proxy_id, pool=pool)
    else:
        row.proxy_id, row.pool = proxy_id, pool
    bump_roster_version(db)
    return Binding(account_id, proxy_id, pool)


@orm.db_session
def record_check(
    db: orm.Database, proxy_id: int, ok: bool, detail: str, exit_address: str, latency_ms: float
) -> bool:
    """Store a check's outcome; True when the proxy's health changed (workers must reload)."""
    row = db.EgressProxy.get(id=proxy_id)
    if row is None:
        return False
    changed = row.check_ok != ok
    row.check_ok, row.check_detail, row.checked_at = ok, detail[:300], time.time()
    if ok:
        row.latency_ms = latency_ms
        row.exit_address = exit_address or row.exit_address
    if changed:
        bump_roster_version(db)
    return changed
