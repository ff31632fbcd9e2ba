"""How long an account sits out after an upstream failure, written into its shared slot.
Owns the back-off policy: hinted delays first, short growing back-offs, never long fixed timers."""

from __future__ import annotations

from server.upstream.failures import FailureKind, UpstreamFailure

from .slots import AccountSlots, Field

BACKOFF_CAP_SECONDS = 30.0
# Long fixed timers push a healthy account's share onto the rest of the pool; growth starts at 1 s.
TRANSIENT_GRACE_FAILURES = 1  # one failure in a row is failed over without benching the account
QUOTA_FALLBACK_SECONDS = 3600.0  # a spent window whose reset the upstream did not tell
DEACTIVATED_GUARD_SECONDS = 300.0  # until the roster (written by accounts/) says deactivated
# A usage-limit error does not say which window is spent: the one whose known reset is this close wins.
_WINDOW_MATCH_SECONDS = 120.0


def transient_backoff(streak: int) -> float:
    """0 s for the first failure in a row, then 1 s, 2 s, 4 s … capped at 30 s."""
    if streak <= TRANSIENT_GRACE_FAILURES:
        return 0.0
    return min(BACKOFF_CAP_SECONDS, 2.0 ** (streak - TRANSIENT_GRACE_FAILURES - 1))


def rate_limit_backoff(streak: int) -> float:
    """For a burst limit without a hint: 1 s, 2 s, 4 s … capped at 30 s."""
    return min(BACKOFF_CAP_SECONDS, 2.0 ** max(0, streak - 1))


def record_failure(slots: AccountSlots, slot: int, failure: UpstreamFailure, now: float) -> float:
    """Bench the account as the failure warrants; the cooldown end, or `now` when it is not benched."""
    kind = failure.kind
    retry_at = failure.retry_at
    if kind is FailureKind.TRANSIENT:
        delay = transient_backoff(round(slots.add(slot, Field.FAILURE_STREAK, 1)))
        return _cool(slots, slot, now + delay) if delay > 0 else now
    if kind is FailureKind.RATE_LIMIT:
        streak = round(slots.add(slot, Field.FAILURE_STREAK, 1))
        until = retry_at if retry_at is not None and retry_at > now else now + rate_limit_backoff(streak)
        return _cool(slots, slot, until)
    if kind is FailureKind.USAGE_LIMIT or kind is FailureKind.NO_QUOTA:
        until = retry_at if retry_at is not None and retry_at > now else now + QUOTA_FALLBACK_SECONDS
        _mark_spent(slots, slot, until)
        return _cool(slots, slot, until)
    if kind is FailureKind.DEACTIVATED:
        return _cool(slots, slot, now + DEACTIVATED_GUARD_SECONDS)
    # AUTH (the caller refreshes and retries), PREVIOUS_RESPONSE_NOT_FOUND, MODEL_NOT_SUPPORTED,
    # WEBSOCKET_EXPIRED and CLIENT_ERROR say nothing bad about the account's health.
    return now


def _cool(slots: AccountSlots, slot: int, until: float) -> float:
    """Extend, never shorten: a burst limit must not cut short a spent window's cooldown."""
    current = slots.get(slot, Field.COOLDOWN_UNTIL)
    if until > current:
        slots.set(slot, Field.COOLDOWN_UNTIL, until)
        return until
    return current


def _mark_spent(slots: AccountSlots, slot: int, until: float) -> None:
    secondary_reset = slots.get(slot, Field.SECONDARY_RESET_AT)
    if secondary_reset and abs(secondary_reset - until) <= _WINDOW_MATCH_SECONDS:
        slots.set(slot, Field.SECONDARY_USED, 100.0)
        slots.set(slot, Field.SECONDARY_RESET_AT, until)
        slots.set(slot, Field.CREDITS_USABLE, 0.0)
        return
    slots.set(slot, Field.PRIMARY_USED, 100.0)
    slots.set(slot, Field.PRIMARY_RESET_AT, until)
