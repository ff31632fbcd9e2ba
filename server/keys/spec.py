"""What an operator asks for when creating or editing a key, validated into plain values.

Every problem raises BadRequest naming the field, so the dashboard and scripts get a clear 400.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.errors import BadRequest
from server.keys.windows import WINDOWS
from server.runtime.control_characters import has_control_characters

QUANTITIES = ("tokens", "cost_usd", "requests")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
MAX_RULES = 50
_FIELDS = (
    "name",
    "enabled",
    "expires_at",
    "allowed_models",
    "allowed_reasoning_efforts",
    "allowed_account_ids",
    "limits",
)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    quantity: str
    window: str
    max_value: float
    model: str = ""  # '' = every model

    @property
    def identity(self) -> tuple[str, str, str]:
        """A rule edited with the same quantity, window and model keeps its counters."""
        return (self.quantity, self.window, self.model)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Fields present in the request; absent ones are left as they are (PATCH) or default (create)."""

    changes: dict[str, Any]

    @classmethod
    def parse(cls, payload: Any, *, creating: bool) -> KeySpec:
        if not isinstance(payload, dict):
            raise BadRequest("Send a JSON object.", code="invalid_api_key_spec")
        unknown = sorted(set(payload) - set(_FIELDS))
        if unknown:
            raise BadRequest(f"Unknown field {unknown[0]!r}.", param=unknown[0], code="invalid_api_key_spec")
        if creating and "name" not in payload:
            raise BadRequest("A key needs a name.", param="name", code="invalid_api_key_spec")
        if not creating and not payload:
            raise BadRequest("Send at least one field to change.", code="invalid_api_key_spec")
        parsers: dict[str, Callable[[Any], Any]] = {
            "name": _name,
            "enabled": _enabled,
            "expires_at": _expires_at,
            "allowed_models": _models,
            "allowed_reasoning_efforts": _efforts,
            "allowed_account_ids": _account_ids,
            "limits": _limits,
        }
        changes = {name: parsers[name](value) for name, value in payload.items()}
        expires_at = changes.get("expires_at")
        if creating and expires_at is not None and expires_at <= time.time():
            raise _bad("expires_at", "is already past: a new key must expire in the future")
        return cls(changes)


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"'{field}' {message}.", param=field, code="invalid_api_key_spec")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100 or has_control_characters(value):
        raise _bad("name", "must be a non-empty string of at most 100 characters, no control characters")
    return value.strip()


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("enabled", "must be true or false")
    return value


def _expires_at(value: Any) -> float | None:
    """null (never), epoch seconds, or an ISO 8601 time with a zone (`2026-12-31T00:00:00Z`)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.timestamp()
    raise _bad("expires_at", "must be null, epoch seconds, or an ISO 8601 time with a zone")


def _string_list(field: str, value: Any, allowed: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(field, "must be null (no restriction) or a non-empty list of strings")
    cleaned = tuple(sorted({v.strip().lower() for v in value}))
    if allowed is not None:
        wrong = [v for v in cleaned if v not in allowed]
        if wrong:
            raise _bad(field, f"has {wrong[0]!r}; use {', '.join(allowed)}")
    return cleaned


def _models(value: Any) -> tuple[str, ...] | None:
    return _string_list("allowed_models", value)


def _efforts(value: Any) -> tuple[str, ...] | None:
    return _string_list("allowed_reasoning_efforts", value, EFFORTS)


def _account_ids(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise _bad("allowed_account_ids", "must be null (every account) or a non-empty list of account ids")
    return tuple(sorted(set(value)))


def _limits(value: Any) -> tuple[LimitSpec, ...]:
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise _bad("limits", f"must be a list of at most {MAX_RULES} rules")
    rules = tuple(_limit(index, rule) for index, rule in enumerate(value))
    identities = [rule.identity for rule in rules]
    if len(set(identities)) != len(identities):
        raise _bad("limits", "has two rules with the same quantity, window and model")
    return rules


def _limit(index: int, rule: Any) -> LimitSpec:
    field = f"limits[{index}]"
    if not isinstance(rule, dict):
        raise _bad(field, "must be an object {quantity, window, max, model?}")
    unknown = sorted(set(rule) - {"quantity", "window", "max", "model"})
    if unknown:
        raise _bad(field, f"has unknown field {unknown[0]!r}")
    quantity, window, maximum = rule.get("quantity"), rule.get("window"), rule.get("max")
    if quantity not in QUANTITIES:
        raise _bad(f"{field}.quantity", f"must be one of {', '.join(QUANTITIES)}")
    if window not in WINDOWS:
        raise _bad(f"{field}.window", f"must be one of {', '.join(WINDOWS)}")
    if (
        isinstance(maximum, bool)
        or not isinstance(maximum, int | float)
        or not math.isfinite(maximum)
        or maximum <= 0
    ):
        raise _bad(f"{field}.max", "must be a positive number")
    if quantity != "cost_usd" and maximum != int(maximum):
        raise _bad(f"{field}.max", f"must be a whole number of {quantity}")
    model = rule.get("model") or ""
    if not isinstance(model, str):
        raise _bad(f"{field}.model", "must be a model name or null")
    return LimitSpec(quantity, window, float(maximum), model.strip().lower())
