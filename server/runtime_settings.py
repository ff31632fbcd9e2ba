"""Run-time settings: what operators change from the dashboard without a restart.

Defaults come from the CODEX_LB_* settings; changes are stored in `app_setting` and reach every worker
and replica through the change marker within a couple of seconds. Add a setting by adding a field and
its validator below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import orjson
from pony import orm

from server.accounts.store import bump_roster_version
from server.config import Settings
from server.errors import BadRequest


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    upstream_stream_transport: str = "auto"
    api_key_auth_enabled: bool = False

    def public(self) -> dict:
        return asdict(self)


def _choice(*allowed: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "upstream_stream_transport": _choice("auto", "http", "websocket"),
    "api_key_auth_enabled": _boolean,
}


def defaults(settings: Settings) -> RuntimeSettings:
    return RuntimeSettings(upstream_stream_transport=settings.upstream_stream_transport)


def parse_changes(payload: Any) -> dict[str, Any]:
    """Validate a PUT /api/settings body: known names only, each value checked."""
    if not isinstance(payload, dict) or not payload:
        raise BadRequest("Send a JSON object with the settings to change.", code="invalid_settings")
    known = {f.name for f in fields(RuntimeSettings)}
    changes = {}
    for name, value in payload.items():
        if name not in known:
            raise BadRequest(f"Unknown setting {name!r}.", param=name, code="invalid_settings")
        try:
            changes[name] = VALIDATORS[name](value)
        except ValueError as exc:
            raise BadRequest(f"Setting {name!r} {exc}.", param=name, code="invalid_settings") from None
    return changes


@orm.db_session
def load(db: orm.Database, base: RuntimeSettings) -> RuntimeSettings:
    stored = {row.name: orjson.loads(row.value) for row in db.AppSetting.select()}
    usable = {}
    for name, value in stored.items():
        validator = VALIDATORS.get(name)
        if validator is None:
            continue  # a setting a newer codex-lb wrote; this version ignores it
        try:
            usable[name] = validator(value)
        except ValueError:
            continue
    return replace(base, **usable)


@orm.db_session
def store_changes(db: orm.Database, changes: dict[str, Any]) -> None:
    now = time.time()
    for name, value in changes.items():
        encoded = orjson.dumps(value).decode()
        row = db.AppSetting.get(name=name)
        if row is None:
            db.AppSetting(name=name, value=encoded, updated_at=now)
        else:
            row.set(value=encoded, updated_at=now)
    bump_roster_version(db)


class RuntimeSettingsCache:
    """One worker's copy, read on the hot path without touching the database."""

    def __init__(self, db, base: RuntimeSettings) -> None:
        self._db = db
        self._base = base
        self.current = base

    async def reload(self) -> None:
        self.current = await self._db.run(load, self._base)

    async def update(self, changes: dict[str, Any]) -> RuntimeSettings:
        await self._db.run(store_changes, changes)
        await self.reload()
        return self.current
