"""Run-time settings: what operators change from the dashboard without a restart.

Defaults come from the CODEX_LB_* settings: every setting of server/settings/table.py marked `runtime`,
whose spec also checks the values sent here. A value stored in `app_setting` wins over the environment
until it is reset (PUT null). Changes reach every worker and replica through the change marker; each
worker keeps its copy in memory and applies it to the balancer, the price book and the request-log
upkeep (follow()), so the hot path never reads the database. Add a setting by marking its spec
`runtime`, adding the field here and, if something must act on it, a line in the applier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import orjson
from pony import orm

from server.balancer.selection import Balancer
from server.config import Settings
from server.errors import BadRequest
from server.runtime.change_marker import bump_roster_version
from server.settings.errors import Invalid
from server.settings.table import RUNTIME
from server.usage.pricing import Price, PriceBook, parse_overrides, price_table
from server.usage.upkeep import RequestLogUpkeep

MAX_PRICED_MODELS = 500
RUNTIME_SPECS = {spec.attribute: spec for spec in RUNTIME}


def _default(name: str) -> Any:
    spec = RUNTIME_SPECS[name]
    return spec.parse(spec.default_text({}), spec.variable)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    routing_strategy: str = _default("routing_strategy")
    sticky_sessions: bool = _default("sticky_sessions")
    prefer_earlier_reset: str = _default("prefer_earlier_reset")
    session_placement: str = _default("session_placement")
    upstream_stream_transport: str = _default("upstream_stream_transport")
    api_key_auth_enabled: bool = _default("api_key_auth_enabled")
    # model -> USD per 1M tokens, on top of the built-in table.
    pricing_overrides: Mapping[str, Price] = field(default_factory=dict)
    request_log_retention_days: float = _default("request_log_retention_days")

    def public(self) -> dict:
        return asdict(self)


def _prices(value: Any) -> dict[str, Price]:
    if not isinstance(value, dict):
        raise Invalid('must be an object of model -> {"input", "cached_input", "output"} in USD per 1M')
    if len(value) > MAX_PRICED_MODELS:
        raise Invalid(f"may price at most {MAX_PRICED_MODELS} models")
    if any(not isinstance(model, str) for model in value):
        raise Invalid("must use model names as keys")
    try:
        table = price_table(value, "pricing_overrides")
    except ValueError as exc:  # ConfigError naming the model and the rate
        raise Invalid(f"is invalid: {exc}") from None
    return {model.strip().lower(): price for model, price in table.items()}


# Each run-time setting's spec checks its values; a price table's rules live with the prices, which the
# settings table cannot import (server.usage reads the settings).
VALIDATORS: dict[str, Callable[[Any], Any]] = {name: spec.check for name, spec in RUNTIME_SPECS.items()}
VALIDATORS["pricing_overrides"] = _prices


def defaults(settings: Settings) -> RuntimeSettings:
    """What the environment says; a stored value replaces any of these."""
    values = {name: getattr(settings, name) for name in RUNTIME_SPECS}
    return RuntimeSettings(**{**values, "pricing_overrides": parse_overrides(settings.pricing_overrides)})


def parse_changes(payload: Any) -> dict[str, Any]:
    """Validate a PUT /api/settings body: known names only, each value checked; null resets a setting
    to its environment default."""
    if not isinstance(payload, dict) or not payload:
        raise BadRequest("Send a JSON object with the settings to change.", code="invalid_settings")
    known = {f.name for f in fields(RuntimeSettings)}
    changes = {}
    for name, value in payload.items():
        if name not in known:
            raise BadRequest(f"Unknown setting {name!r}.", param=name, code="invalid_settings")
        if value is None:
            changes[name] = None
            continue
        try:
            changes[name] = VALIDATORS[name](value)
        except Invalid as exc:
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
        except Invalid:
            continue
    return replace(base, **usable)


@orm.db_session
def store_changes(db: orm.Database, changes: dict[str, Any]) -> None:
    now = time.time()
    for name, value in changes.items():
        if value is None:
            row = db.AppSetting.get(name=name)
            if row is not None:
                row.delete()
            continue
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
        self._followers: list[Callable[[RuntimeSettings], None]] = []

    def follow(self, apply: Callable[[RuntimeSettings], None]) -> None:
        """Call `apply` with the current settings now and after every reload (plain, quick, no I/O)."""
        self._followers.append(apply)
        apply(self.current)

    @property
    def defaults(self) -> RuntimeSettings:
        return self._base

    async def reload(self) -> None:
        self.current = await self._db.run(load, self._base)
        for apply in self._followers:
            apply(self.current)

    async def update(self, changes: dict[str, Any]) -> RuntimeSettings:
        await self._db.run(store_changes, changes)
        await self.reload()
        return self.current


def applier(
    balancer: Balancer, prices: PriceBook, request_log: RequestLogUpkeep
) -> Callable[[RuntimeSettings], None]:
    """What one worker does with new settings: the next request routes and prices with them. The other
    two settings are read where they act (server.auth.guard, server.proxy transport choice)."""

    def apply(current: RuntimeSettings) -> None:
        balancer.configure(
            current.routing_strategy,
            current.sticky_sessions,
            prefer_earlier_reset=current.prefer_earlier_reset,
            placement=current.session_placement,
        )
        prices.install_overrides(current.pricing_overrides)
        request_log.retention_days = current.request_log_retention_days

    return apply
