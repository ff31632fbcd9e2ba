"""An account's quota windows in its shared slot: the one writer of the window and credit fields.

Every place that learns windows (an upstream answer's headers, a socket's codex.rate_limits event, a
usage poll) hands the snapshot here, so the slot layout is known to the balancer alone.
"""

from __future__ import annotations

from server.upstream.ratelimits import RateLimitSnapshot, UsageWindow

from .slots import AccountSlots, Field

RESET_JITTER_S = 1.0
USED_STEP = 0.5  # percentage points


def apply_to_slots(slots: AccountSlots, slot: int, snapshot: RateLimitSnapshot) -> None:
    """Write the windows (and credits) into the account's shared slot.

    A snapshot with at least one window replaces both: a window the backend stopped reporting is cleared,
    so a stale 100 % cannot keep the account benched. A snapshot without windows leaves them alone.
    """
    if snapshot.primary is not None or snapshot.secondary is not None:
        _write_window(slots, slot, Field.PRIMARY_USED, Field.PRIMARY_RESET_AT, snapshot.primary)
        _write_window(slots, slot, Field.SECONDARY_USED, Field.SECONDARY_RESET_AT, snapshot.secondary)
    usable = snapshot.credits_usable
    if usable is not None:
        slots.set(slot, Field.CREDITS_USABLE, 1.0 if usable else 0.0)


def _write_window(
    slots: AccountSlots, slot: int, used: Field, reset: Field, window: UsageWindow | None
) -> None:
    if window is None:
        slots.set(slot, used, 0.0)
        slots.set(slot, reset, 0.0)
    else:
        percent = window.used_percent
        before = slots.get(slot, used)
        # Answers report the percent to a hundredth, so nearly every answer moves it a little: a move
        # under USED_STEP keeps the value (each write counts as a change of the pool, which makes every
        # worker re-sort its open accounts); spent or fresh is always written.
        if abs(percent - before) >= USED_STEP or percent >= 100.0 or before >= 100.0 or not percent:
            slots.set(slot, used, percent)
        reset_at = window.reset_at or 0.0
        # A reset given as seconds from now lands a fraction later on each answer: the same reset, and
        # rewriting it would count as a change of the pool (see AccountSlots.changes) on every answer.
        if abs(reset_at - slots.get(slot, reset)) >= RESET_JITTER_S or not reset_at:
            slots.set(slot, reset, reset_at)
