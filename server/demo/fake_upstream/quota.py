"""An account's quota as the backend reports it: rate-limit headers, codex.rate_limits, /wham/usage.
Owns the arithmetic from tokens consumed against the per-window budget to used percent and resets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .accounts import Account
from .behaviour import Behaviour

OTHER_LIMIT = "codex_other"  # the per-model bucket's limit name, as /wham/usage spells it


@dataclass(frozen=True, slots=True)
class WindowUse:
    used_percent: float
    window_minutes: int
    reset_at: int
    reset_after_seconds: int

    @property
    def exhausted(self) -> bool:
        return self.used_percent >= 100.0


@dataclass(frozen=True, slots=True)
class Quota:
    plan_type: str
    primary: WindowUse
    secondary: WindowUse | None
    has_credits: bool
    unlimited: bool
    balance: str
    other: WindowUse | None = None  # the per-model bucket, when the account has one
    other_models: tuple[str, ...] = ()

    def bucket_of(self, model: str) -> WindowUse | None:
        return self.other if model in self.other_models else None

    @property
    def exhausted_window(self) -> WindowUse | None:
        """The window that blocks requests (the later reset when both are spent), or None."""
        spent = [w for w in (self.primary, self.secondary) if w is not None and w.exhausted]
        if not spent:
            return None
        # Credits lift the weekly limit, not the short one (as the real backend does).
        if self.has_credits or self.unlimited:
            spent = [w for w in spent if w is self.primary]
        return max(spent, key=lambda w: w.reset_at) if spent else None


def _use(used: int, budget: int, minutes: int, started_at: float, now: float) -> WindowUse:
    percent = 100.0 if budget <= 0 else min(100.0, used * 100.0 / budget)
    reset_at = int(started_at + minutes * 60)
    return WindowUse(round(percent, 2), minutes, reset_at, max(0, reset_at - int(now)))


def quota_of(account: Account, behaviour: Behaviour, now: float) -> Quota:
    account.primary.roll(behaviour.primary_window_minutes, now)
    primary = _use(
        account.primary.used_tokens,
        behaviour.primary_budget_tokens,
        behaviour.primary_window_minutes,
        account.primary.started_at,
        now,
    )
    secondary = None
    if behaviour.secondary_window_minutes > 0:
        account.secondary.roll(behaviour.secondary_window_minutes, now)
        secondary = _use(
            account.secondary.used_tokens,
            behaviour.secondary_budget_tokens,
            behaviour.secondary_window_minutes,
            account.secondary.started_at,
            now,
        )
    other = None
    if behaviour.other_models:
        account.other.roll(behaviour.other_window_minutes, now)
        other = _use(
            account.other.used_tokens,
            behaviour.other_budget_tokens,
            behaviour.other_window_minutes,
            account.other.started_at,
            now,
        )
    return Quota(
        plan_type=behaviour.plan_type or account.identity.plan_type,
        primary=primary,
        secondary=secondary,
        has_credits=behaviour.credits_has_credits,
        unlimited=behaviour.credits_unlimited,
        balance=behaviour.credits_balance,
        other=other,
        other_models=tuple(behaviour.other_models),
    )


def consume(
    account: Account, behaviour: Behaviour, tokens: int, now: float, model: str | None = None
) -> None:
    """Spend the windows that meter `model`: its bucket's for a per-model one, else the main ones."""
    if model is not None and model in behaviour.other_models:
        account.other.roll(behaviour.other_window_minutes, now)
        account.other.used_tokens += tokens
        return
    account.primary.roll(behaviour.primary_window_minutes, now)
    account.primary.used_tokens += tokens
    if behaviour.secondary_window_minutes > 0:
        account.secondary.roll(behaviour.secondary_window_minutes, now)
        account.secondary.used_tokens += tokens


def _bool(value: bool) -> str:
    return "true" if value else "false"


def rate_limit_headers(quota: Quota) -> dict[str, str]:
    p = quota.primary
    headers = {
        "x-codex-primary-used-percent": repr(float(p.used_percent)),
        "x-codex-primary-window-minutes": str(p.window_minutes),
        "x-codex-primary-reset-at": str(p.reset_at),
        "x-codex-credits-has-credits": _bool(quota.has_credits),
        "x-codex-credits-unlimited": _bool(quota.unlimited),
        "x-codex-credits-balance": quota.balance,
    }
    s = quota.secondary
    if s is not None:
        headers["x-codex-secondary-used-percent"] = repr(float(s.used_percent))
        headers["x-codex-secondary-window-minutes"] = str(s.window_minutes)
        headers["x-codex-secondary-reset-at"] = str(s.reset_at)
    o = quota.other
    if o is not None:  # the per-model family: x-<limit id>-…, limit id codex_other with _ → -
        headers["x-codex-other-primary-used-percent"] = repr(float(o.used_percent))
        headers["x-codex-other-primary-window-minutes"] = str(o.window_minutes)
        headers["x-codex-other-primary-reset-at"] = str(o.reset_at)
        headers["x-codex-other-limit-name"] = OTHER_LIMIT
    return headers


def _event_window(w: WindowUse | None) -> dict | None:
    if w is None:
        return None
    return {
        "used_percent": w.used_percent,
        "window_minutes": w.window_minutes,
        "reset_after_seconds": w.reset_after_seconds,
        "reset_at": w.reset_at,
    }


def _credits(quota: Quota) -> dict:
    return {"has_credits": quota.has_credits, "unlimited": quota.unlimited, "balance": quota.balance}


def rate_limits_event(quota: Quota) -> dict:
    blocked = quota.exhausted_window is not None
    return {
        "type": "codex.rate_limits",
        "plan_type": quota.plan_type,
        "rate_limits": {
            "allowed": not blocked,
            "limit_reached": blocked,
            "primary": _event_window(quota.primary),
            "secondary": _event_window(quota.secondary),
        },
        "credits": _credits(quota),
        "metered_limit_name": "codex",
    }


def _usage_window(w: WindowUse | None) -> dict | None:
    if w is None:
        return None
    return {
        "used_percent": min(100, math.ceil(w.used_percent)),
        "limit_window_seconds": w.window_minutes * 60,
        "reset_after_seconds": w.reset_after_seconds,
        "reset_at": w.reset_at,
    }


def usage_body(account: Account, quota: Quota) -> dict:
    blocked = quota.exhausted_window is not None
    return {
        "plan_type": quota.plan_type,
        "user_id": account.identity.user_id,
        "account_id": account.account_id,
        "email": account.identity.email,
        "rate_limit": {
            "allowed": not blocked,
            "limit_reached": blocked,
            "primary_window": _usage_window(quota.primary),
            "secondary_window": _usage_window(quota.secondary),
        },
        "credits": _credits(quota),
        "rate_limit_reset_credits": {"available_count": 0},
        "additional_rate_limits": [
            {
                "limit_name": OTHER_LIMIT,
                "metered_feature": OTHER_LIMIT,
                "rate_limit": {"primary_window": _usage_window(quota.other), "secondary_window": None},
            }
        ]
        if quota.other is not None
        else [],
    }
