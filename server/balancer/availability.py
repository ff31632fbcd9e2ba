"""Whether an account can take a request now, from its roster status and its shared slot; if not, why
and until when. Owns Block (the reasons an account sits out) and the headroom arithmetic of a slot row."""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum

from .candidates import ACTIVE, DEACTIVATED, PAUSED, QUOTA_EXCEEDED, RATE_LIMITED, REAUTH_REQUIRED, Candidate
from .slots import Field

# Plain ints: a tuple indexed by an IntEnum pays for __index__ on every read of the hot loop.
COOLDOWN_UNTIL = int(Field.COOLDOWN_UNTIL)
INFLIGHT = int(Field.INFLIGHT)
PRIMARY_USED = int(Field.PRIMARY_USED)
PRIMARY_RESET_AT = int(Field.PRIMARY_RESET_AT)
SECONDARY_USED = int(Field.SECONDARY_USED)
SECONDARY_RESET_AT = int(Field.SECONDARY_RESET_AT)
CREDITS_USABLE = int(Field.CREDITS_USABLE)


class Block(Enum):
    """Why an account cannot take this request. The value is what `sticky_moved:<reason>` shows."""

    PAUSED = "paused"
    REAUTH_REQUIRED = "reauth_required"
    DEACTIVATED = "deactivated"
    PLAN = "plan_mismatch"
    EXHAUSTED = "exhausted"  # a usage window is spent (or the roster says quota_exceeded)
    COOLDOWN = "cooldown"  # a burst limit or repeated failures (or the roster says rate_limited)
    EXCLUDED = "excluded"  # already tried for this request


# Blocks that pass without anyone acting: the account still counts for stickiness and retry times.
PASSING = frozenset({Block.EXHAUSTED, Block.COOLDOWN, Block.EXCLUDED})
_STANDING = {PAUSED: Block.PAUSED, REAUTH_REQUIRED: Block.REAUTH_REQUIRED, DEACTIVATED: Block.DEACTIVATED}


def standing_block(candidate: Candidate, model_plans: Collection[str] | None) -> Block | None:
    """A block that needs a person (paused, re-login, gone) or another plan; None if the slot decides."""
    # The plan first: an account that cannot serve the model is irrelevant, whatever its status.
    if model_plans is not None and candidate.plan_type not in model_plans:
        return Block.PLAN
    status = candidate.status
    if status != ACTIVE and status != RATE_LIMITED and status != QUOTA_EXCEEDED:
        # An unknown status is treated as unusable: routing to an account we do not understand is worse.
        return _STANDING.get(status, Block.DEACTIVATED)
    return None


def passing_block(
    candidate: Candidate, row: tuple[float, ...], excluded: bool, now: float
) -> tuple[Block, float] | None:
    """Exhausted, cooling down or already tried, with the time it ends (0 for excluded); None if open.

    Exhaustion wins over a cooldown and both over exclusion, so the reasons and retry times reported when
    nothing is left describe the pool, not just this request's attempts.
    """
    if (
        row[COOLDOWN_UNTIL] <= now
        and row[PRIMARY_USED] < 100.0
        and row[SECONDARY_USED] < 100.0
        and candidate.status == ACTIVE
    ):
        return (Block.EXCLUDED, 0.0) if excluded else None  # the common case, decided in four reads
    exhausted_until = window_block_until(row, now)
    if candidate.status == QUOTA_EXCEEDED and candidate.status_until > now:
        exhausted_until = max(exhausted_until, candidate.status_until)
    cooldown_until = row[COOLDOWN_UNTIL]
    if candidate.status == RATE_LIMITED and candidate.status_until > cooldown_until:
        cooldown_until = candidate.status_until
    if exhausted_until > now:
        return Block.EXHAUSTED, max(exhausted_until, cooldown_until)
    if cooldown_until > now:
        return Block.COOLDOWN, cooldown_until
    if excluded:
        return Block.EXCLUDED, 0.0
    return None


def window_block_until(row: tuple[float, ...], now: float) -> float:
    """When the spent windows of the row reset (0 if none is spent). Credits lift the weekly window."""
    until = 0.0
    if row[PRIMARY_USED] >= 100.0 and row[PRIMARY_RESET_AT] > now:
        until = row[PRIMARY_RESET_AT]
    if row[SECONDARY_USED] >= 100.0 and row[SECONDARY_RESET_AT] > now and not row[CREDITS_USABLE]:
        until = max(until, row[SECONDARY_RESET_AT])
    return until


def headroom(row: tuple[float, ...], now: float) -> float:
    """Percent left in the tighter window. A window whose reset time has passed counts as fresh."""
    reset = row[PRIMARY_RESET_AT]
    used = row[PRIMARY_USED] if reset == 0.0 or reset > now else 0.0
    reset = row[SECONDARY_RESET_AT]
    secondary = row[SECONDARY_USED] if reset == 0.0 or reset > now else 0.0
    if secondary > used and not (secondary >= 100.0 and row[CREDITS_USABLE]):
        used = secondary
    return 100.0 - used
