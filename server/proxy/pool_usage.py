"""The pool's combined quota windows (pool_windows), as a client of the pool should see them: the usage
routes the Codex CLI's /status asks (`/backend-api/wham/usage`, `/api/codex/usage`) and the x-codex-*
rate-limit headers of API-key clients, instead of whichever account served last. No database round trip.
"""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import json

from server.auth.guard import authorize_proxy
from server.errors import ProxyError
from server.keys import store as key_store
from server.keys.windows import bounds
from server.proxy.pool_windows import PoolWindow, PoolWindows

bp = Blueprint("pool_usage")
CODEX_USAGE_PATH = "/api/codex/usage"  # served to key holders, not behind the dashboard sign-in


def rate_limit_headers(pool: PoolWindows, minutes: dict[str, int] | None = None) -> dict[str, str]:
    """The x-codex-* window headers of the pool's view (window lengths as upstream last reported)."""
    out = {}
    for name, window in (("primary", pool.primary), ("secondary", pool.secondary)):
        if window is None:
            continue
        length = (minutes or {}).get(name) or window.window_minutes
        out[f"x-codex-{name}-used-percent"] = f"{window.used_percent:.1f}"
        out[f"x-codex-{name}-window-minutes"] = str(length)
        if window.reset_at:
            out[f"x-codex-{name}-reset-at"] = str(int(window.reset_at))
    return out


def wham_body(pool: PoolWindows, now: float) -> dict:
    """The upstream /wham/usage shape, for the pool."""

    def window(w: PoolWindow | None):
        if w is None:
            return None
        return {
            "used_percent": round(w.used_percent),
            "limit_window_seconds": w.window_minutes * 60,
            "reset_after_seconds": max(0, int(w.reset_at - now)) if w.reset_at else None,
            "reset_at": int(w.reset_at) if w.reset_at else None,
        }

    return {
        "plan_type": "pro" if pool.accounts else "guest",
        "rate_limit": {
            "allowed": not pool.limit_reached,
            "limit_reached": pool.limit_reached,
            "primary_window": window(pool.primary),
            "secondary_window": window(pool.secondary),
        },
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
        "pool": {"accounts": pool.accounts},
    }


def view_for(ctx, key, allowed_accounts, now: float) -> dict[str, str] | None:
    """Headers replacing the serving account's windows for this client, or None to pass them through.
    An empty dict hides the upstream windows (CODEX_LB_HIDE_UPSTREAM_QUOTA for key holders)."""
    mode = ctx.settings.pool_rate_limits
    if key is not None and ctx.settings.hide_upstream_quota:
        return {}
    if mode == "off" or (mode == "keys" and key is None):
        return None
    return rate_limit_headers(ctx.pool_windows.of(allowed_accounts, now))


def rate_limits_event(ctx, key, allowed_accounts, data: dict, now: float) -> dict | None:
    """A `codex.rate_limits` event as this client should see it: the pool's windows in place of the
    serving account's, unchanged when the setting does not apply, None (not sent) when hidden."""
    mode = ctx.settings.pool_rate_limits
    if key is not None and ctx.settings.hide_upstream_quota:
        return None
    limits = data.get("rate_limits")
    if mode == "off" or (mode == "keys" and key is None) or not isinstance(limits, dict):
        return data
    pool = ctx.pool_windows.of(allowed_accounts, now)
    rewritten = dict(limits)
    for name, window in (("primary", pool.primary), ("secondary", pool.secondary)):
        before = limits.get(name)
        if not isinstance(before, dict):
            before = {}
        if window is None:
            rewritten[name] = None
            continue
        rewritten[name] = {
            **before,
            "used_percent": round(window.used_percent, 1),
            "window_minutes": before.get("window_minutes") or window.window_minutes,
            "reset_at": int(window.reset_at) if window.reset_at else None,
            "reset_after_seconds": max(0, int(window.reset_at - now)) if window.reset_at else None,
        }
    rewritten["limit_reached"] = pool.limit_reached
    rewritten["allowed"] = not pool.limit_reached
    return {**data, "rate_limits": rewritten}


@bp.get("/backend-api/wham/usage")
async def wham_usage(request: Request):
    """What the Codex CLI's /status asks under a ChatGPT-style base URL."""
    return await pool_usage(request)


@bp.get(CODEX_USAGE_PATH)
async def codex_usage(request: Request):
    """The same for clients with an API-style base URL (an API key, or a local caller)."""
    return await pool_usage(request)


async def pool_usage(request: Request):
    key = authorize_proxy(request)
    ctx = request.app.ctx.proxy
    if key is not None and ctx.settings.hide_upstream_quota:
        raise ProxyError(
            "The operator does not share upstream quota with API-key holders; see GET /v1/usage for this "
            "key's own limits.",
            status=403,
            type="invalid_request_error",
            code="quota_hidden",
        )
    now = time.time()
    allowed = key.allowed_accounts if key else None
    # Asked now and then (the CLI's /status), maybe right after a turn: read the slots now.
    pool = ctx.pool_windows.of(allowed, now, fresh=True)
    if key is not None and key.limits:
        pool = with_key_limits(
            pool, key, await ctx.db.run(key_store.current_usage, [r.id for r in key.limits], now), now
        )
    return json(wham_body(pool, now))


SHORT_WINDOWS = frozenset({"minute", "hour", "day"})  # compared with the 5-hour window; longer: weekly


def with_key_limits(pool: PoolWindows, key, usage, now: float) -> PoolWindows:
    """A key's own limits where it has them: a window shows the key's rule instead of the pool when that
    rule is the closer to its end (rules for one model only are left out: they do not bound every call)."""
    primary, secondary = pool.primary, pool.secondary
    for rule in key.limits:
        if rule.model or rule.max_value <= 0:
            continue
        start, end = bounds(rule.window, now)
        current = usage.get((rule.id, start), key_store.WindowUsage(0.0, 0.0))
        used = min(100.0, 100.0 * (current.used + current.reserved) / rule.max_value)
        own = PoolWindow(used, max(1, (end - start) // 60), float(end))
        if rule.window in SHORT_WINDOWS:
            if primary is None or used > primary.used_percent:
                primary = own
        elif secondary is None or used > secondary.used_percent:
            secondary = own
    reached = pool.limit_reached or any(
        w is not None and w.used_percent >= 100.0 for w in (primary, secondary)
    )
    return PoolWindows(primary, secondary, pool.accounts, reached)
