"""Quota windows as the backend reports them: x-codex-* headers, codex.rate_limits events, /wham/usage.
Owns RateLimitSnapshot (parsed leniently: garbage becomes None, never an exception); the balancer writes
it into the account's slot (server.balancer.windows)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_HEADER_PREFIX = "x-codex-"
# Reset times further ahead than this are garbage (the longest window is 30 days).
_MAX_AHEAD_SECONDS = 366 * 86400
# Epoch seconds before 2001 are not reset times; above 1e11 they are milliseconds.
_EPOCH_FLOOR = 1e9
_EPOCH_MS_FLOOR = 1e11
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True, slots=True)
class UsageWindow:
    used_percent: float
    window_minutes: int | None
    reset_at: float | None

    @property
    def exhausted(self) -> bool:
        return self.used_percent >= 100.0


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    primary: UsageWindow | None
    secondary: UsageWindow | None
    credits_has_credits: bool | None
    credits_unlimited: bool | None
    credits_balance: float | None
    plan_type: str | None

    @property
    def credits_usable(self) -> bool | None:
        """Whether paid credits lift the weekly window; None when the answer said nothing about credits."""
        said = (self.credits_has_credits, self.credits_unlimited, self.credits_balance)
        if said == (None, None, None):
            return None
        return bool(self.credits_has_credits or self.credits_unlimited or (self.credits_balance or 0.0) > 0)


def from_headers(headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
    """The account's windows from an upstream response's (or WS handshake's) headers; None if absent."""
    found: dict[str, Any] = {}
    try:
        for name, value in headers.items():
            # Most headers fail the first-letter test, which is cheaper than lower-casing every name.
            if name[:1] in "xX":
                lower = name.lower()
                if lower.startswith(_HEADER_PREFIX):
                    found[lower[len(_HEADER_PREFIX) :]] = value
    except (AttributeError, TypeError):  # not a mapping of str names
        return None
    if not found:
        return None
    return _snapshot(
        _header_window(found, "primary-", now),
        _header_window(found, "secondary-", now),
        _bool(found.get("credits-has-credits")),
        _bool(found.get("credits-unlimited")),
        _number(found.get("credits-balance")),
        None,
    )


def from_rate_limits_event(event: dict, now: float) -> RateLimitSnapshot | None:
    """The `codex.rate_limits` stream event; None for per-model buckets (limit name other than codex)."""
    if not isinstance(event, dict):
        return None
    name = event.get("metered_limit_name") or event.get("limit_id") or event.get("limit_name")
    if isinstance(name, str) and name.lower() != "codex":
        return None
    limits = _mapping(event.get("rate_limits"))
    credits = _mapping(event.get("credits"))
    return _snapshot(
        _object_window(limits.get("primary"), now),
        _object_window(limits.get("secondary"), now),
        _bool(credits.get("has_credits")),
        _bool(credits.get("unlimited")),
        _number(credits.get("balance")),
        _text(event.get("plan_type")),
    )


def from_wham_usage(body: dict, now: float) -> RateLimitSnapshot | None:
    """The body of GET /wham/usage (windows sized in limit_window_seconds)."""
    if not isinstance(body, dict):
        return None
    limits = _mapping(body.get("rate_limit"))
    credits = _mapping(body.get("credits"))
    return _snapshot(
        _object_window(limits.get("primary_window"), now),
        _object_window(limits.get("secondary_window"), now),
        _bool(credits.get("has_credits")),
        _bool(credits.get("unlimited")),
        _number(credits.get("balance")),
        _text(body.get("plan_type")),
    )


def _snapshot(
    primary: UsageWindow | None,
    secondary: UsageWindow | None,
    has_credits: bool | None,
    unlimited: bool | None,
    balance: float | None,
    plan_type: str | None,
) -> RateLimitSnapshot | None:
    if all(part is None for part in (primary, secondary, has_credits, unlimited, balance, plan_type)):
        return None
    return RateLimitSnapshot(primary, secondary, has_credits, unlimited, balance, plan_type)


def _header_window(found: dict[str, Any], prefix: str, now: float) -> UsageWindow | None:
    used = _percent(found.get(prefix + "used-percent"))
    if used is None:
        return None
    reset_at = _epoch(found.get(prefix + "reset-at"), now)
    if reset_at is None:
        reset_at = _after(found.get(prefix + "reset-after-seconds"), now)
    return UsageWindow(used, _minutes(found.get(prefix + "window-minutes")), reset_at)


def _object_window(value: Any, now: float) -> UsageWindow | None:
    if not isinstance(value, dict):
        return None
    used = _percent(value.get("used_percent"))
    if used is None:
        return None
    minutes = _minutes(value.get("window_minutes"))
    if minutes is None:
        seconds = _number(value.get("limit_window_seconds"))
        minutes = math.ceil(seconds / 60) if seconds is not None and seconds > 0 else None
    reset_at = _epoch(value.get("reset_at"), now)
    if reset_at is None:
        reset_at = _epoch(value.get("resets_at"), now)
    if reset_at is None:
        reset_at = _after(value.get("reset_after_seconds"), now)
    return UsageWindow(used, minutes, reset_at)


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is str or kind is bytes or kind is float or kind is int:
        try:
            number = float(value)  # surrounding whitespace is accepted
        except ValueError:
            return None
    elif isinstance(value, int | float) and kind is not bool:
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


def _percent(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else max(0.0, number)


def _minutes(value: Any) -> int | None:
    number = _number(value)
    return round(number) if number is not None and number > 0 else None


def _epoch(value: Any, now: float) -> float | None:
    number = _number(value)
    if number is None:
        return None
    if number >= _EPOCH_MS_FLOOR:
        number /= 1000.0
    if number < _EPOCH_FLOOR or number > now + _MAX_AHEAD_SECONDS:
        return None
    return number


def _after(value: Any, now: float) -> float | None:
    number = _number(value)
    if number is None or number < 0 or number > _MAX_AHEAD_SECONDS:
        return None
    return now + number


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return None if value not in (0, 1) else bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def snapshot_to_json(snapshot: RateLimitSnapshot) -> dict:
    """A plain-JSON form of the snapshot, stored on the account so every replica learns the windows."""

    def window(w: UsageWindow | None) -> dict | None:
        if w is None:
            return None
        return {"used_percent": w.used_percent, "window_minutes": w.window_minutes, "reset_at": w.reset_at}

    return {
        "primary": window(snapshot.primary),
        "secondary": window(snapshot.secondary),
        "credits": {
            "has_credits": snapshot.credits_has_credits,
            "unlimited": snapshot.credits_unlimited,
            "balance": snapshot.credits_balance,
        },
        "plan_type": snapshot.plan_type,
    }


def snapshot_from_json(document: dict) -> RateLimitSnapshot | None:
    """The inverse of snapshot_to_json (lenient: garbage becomes None)."""
    if not isinstance(document, dict):
        return None

    def window(value: Any) -> UsageWindow | None:
        if not isinstance(value, dict):
            return None
        used = _percent(value.get("used_percent"))
        if used is None:
            return None
        reset = _number(value.get("reset_at"))
        return UsageWindow(used, _minutes(value.get("window_minutes")), reset)

    credits = _mapping(document.get("credits"))
    return _snapshot(
        window(document.get("primary")),
        window(document.get("secondary")),
        _bool(credits.get("has_credits")),
        _bool(credits.get("unlimited")),
        _number(credits.get("balance")),
        _text(document.get("plan_type")),
    )


# Per-model buckets: header families `x-<limit id>-primary-…` besides the account's own `x-codex-…`
# (limit id with _ → -, e.g. x-codex-other-primary-used-percent, named by x-codex-other-limit-name), and
# /wham/usage `additional_rate_limits`. A bucket is keyed by its limit name ("codex_other").
_FAMILY_USED = ("-primary-used-percent", "-secondary-used-percent")


def model_buckets_from_headers(headers: Mapping[str, str], now: float) -> dict[str, UsageWindow]:
    """Each per-model bucket's tighter window (the spent one, else the fuller), by limit name."""
    families: dict[str, dict[str, Any]] = {}
    try:
        for name, value in headers.items():
            lower = name.lower()
            if not lower.startswith("x-") or lower.startswith(("x-codex-primary-", "x-codex-secondary-")):
                continue
            for suffix in (*_FAMILY_USED, "-primary-window-minutes", "-primary-reset-at",
                           "-secondary-window-minutes", "-secondary-reset-at", "-limit-name"):  # fmt: skip
                if lower.endswith(suffix):
                    family = lower[2 : -len(suffix)]
                    if family and family not in ("codex", "codex-credits"):
                        families.setdefault(family, {})[suffix[1:]] = value
                    break
    except (AttributeError, TypeError):
        return {}
    buckets = {}
    for family, found in families.items():
        windows = [w for w in (_header_window(found, p, now) for p in ("primary-", "secondary-")) if w]
        if windows:
            name = _text(found.get("limit-name")) or family.replace("-", "_")
            buckets[name] = _tighter(windows)
    return buckets


def model_buckets_from_wham(body: dict, now: float) -> dict[str, UsageWindow]:
    """`additional_rate_limits` of GET /wham/usage, by limit name."""
    buckets = {}
    entries = body.get("additional_rate_limits") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        name = _text(entry.get("limit_name")) or _text(entry.get("metered_feature"))
        limits = _mapping(entry.get("rate_limit"))
        windows = [
            w
            for w in (_object_window(limits.get(k), now) for k in ("primary_window", "secondary_window"))
            if w is not None
        ]
        if name and windows:
            buckets[name] = _tighter(windows)
    return buckets


def _tighter(windows: list[UsageWindow]) -> UsageWindow:
    spent = [w for w in windows if w.exhausted]
    if spent:
        return max(spent, key=lambda w: w.reset_at or 0.0)
    return max(windows, key=lambda w: w.used_percent)
