"""The pool's combined quota windows over the accounts a client may use, from the shared slots: what
pool_usage shows to key clients and to the Codex CLI's /status. Owns the short per-worker cache of them.

Combined = the capacity left across those accounts (an account out of quota counts as fully used), with
the soonest reset. Every key client's request asks for them (its rate-limit headers, each
codex.rate_limits event on a socket); they move only as answers arrive, so one reading serves a view of
the pool for up to TTL_S.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from server.balancer.candidates import Candidate
from server.balancer.slots import AccountSlots, Field
from server.proxy.pool_views import PoolViews

UNROUTABLE = frozenset({"paused", "reauth_required", "deactivated"})
DEFAULT_MINUTES = {"primary": 300, "secondary": 10080}
TTL_S = 1.0
MAX_KEPT = 256  # views of the pool with a reading kept, per worker


@dataclass(frozen=True, slots=True)
class PoolWindow:
    used_percent: float
    window_minutes: int
    reset_at: float | None


@dataclass(frozen=True, slots=True)
class PoolWindows:
    primary: PoolWindow | None
    secondary: PoolWindow | None
    accounts: int  # how many accounts the windows combine
    limit_reached: bool


def combine(slots: AccountSlots, candidates: tuple[Candidate, ...], now: float) -> PoolWindows:
    """The windows of `candidates` (the routable ones: paused and signed-out accounts are left out)."""
    usable = [c for c in candidates if c.status not in UNROUTABLE]
    if not usable:
        return PoolWindows(None, None, 0, True)
    # Read the slots as one array: at 500 accounts a loop of per-field reads cost 0.65 ms.
    rows = slots.rows.take([c.slot for c in usable], axis=0)
    exhausted = np.fromiter(
        (c.status == "quota_exceeded" and c.status_until > now for c in usable), bool, len(usable)
    )
    windows = {}
    for name, used_field, reset_field in (
        ("primary", Field.PRIMARY_USED, Field.PRIMARY_RESET_AT),
        ("secondary", Field.SECONDARY_USED, Field.SECONDARY_RESET_AT),
    ):
        used = np.where(exhausted, 100.0, np.clip(rows[:, used_field], 0.0, 100.0))
        resets = rows[:, reset_field]
        upcoming = resets[resets > now]
        # The capacity left across the pool, as a share of the pool's whole window.
        windows[name] = PoolWindow(
            float(used.mean()), DEFAULT_MINUTES[name], float(upcoming.min()) if upcoming.size else None
        )
    reached = all(w.used_percent >= 100.0 for w in windows.values())
    return PoolWindows(windows["primary"], windows["secondary"], len(usable), reached)


class RecentWindows:
    """Each view's windows, read again once they are TTL_S old: at 500 accounts a reading costs about
    0.1 ms, which every key client's request paid. A new roster, a key's new account set or an egress
    change is a new view (pool_views), so only the slot figures can lag, by under TTL_S."""

    def __init__(self, slots: AccountSlots, views: PoolViews) -> None:
        self._slots = slots
        self._views = views
        # id(view) -> (view, read at, windows); the entry holds the view, so its id is not reused
        self._kept: dict[int, tuple[tuple[Candidate, ...], float, PoolWindows]] = {}

    def of(self, allowed: Collection[int] | None, now: float, fresh: bool = False) -> PoolWindows:
        """The windows of the accounts `allowed` (None: all) that can be routed to; `fresh`: read now."""
        view = self._views.routable(allowed, now)
        kept = self._kept.get(id(view))
        if not fresh and kept is not None and kept[0] is view and 0.0 <= now - kept[1] < TTL_S:
            return kept[2]
        windows = combine(self._slots, view, now)
        self._kept.pop(id(view), None)
        if len(self._kept) >= MAX_KEPT:
            del self._kept[next(iter(self._kept))]  # the longest unread
        self._kept[id(view)] = (view, now, windows)
        return windows
