"""What the balancer says when no account can take a request: the dominant reason and the soonest retry.
Owns NoAccountAvailable; the proxy turns all_exhausted into 429 usage_limit_reached, the rest into 503."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .availability import Block

NO_ACCOUNTS = "no_accounts"  # none added
ALL_EXHAUSTED = "all_exhausted"  # some spent, the rest at most cooling: 429 with retry-after
ALL_COOLING_DOWN = "all_cooling_down"  # burst limits / failure back-offs (some may be spent too)
ALL_EXCLUDED = "all_excluded"  # every usable account was tried for this request: answer its last failure
NO_PLAN_FOR_MODEL = "no_plan_for_model"  # no account is on a plan that serves the model
ALL_PAUSED = "all_paused"
ALL_REAUTH_REQUIRED = "all_reauth_required"
ALL_DEACTIVATED = "all_deactivated"

_STANDING_REASONS = {
    Block.PAUSED: ALL_PAUSED,
    Block.REAUTH_REQUIRED: ALL_REAUTH_REQUIRED,
    Block.DEACTIVATED: ALL_DEACTIVATED,
}
_STANDING_ORDER = (Block.PAUSED, Block.REAUTH_REQUIRED, Block.DEACTIVATED)
_MESSAGES = {
    NO_ACCOUNTS: "No accounts have been added",
    ALL_EXHAUSTED: "Every account has reached its usage limit",
    ALL_COOLING_DOWN: "Every account is cooling down after upstream rate limits or errors",
    ALL_EXCLUDED: "Every available account was tried for this request",
    NO_PLAN_FOR_MODEL: "No account is on a plan that serves this model",
    ALL_PAUSED: "All accounts are paused",
    ALL_REAUTH_REQUIRED: "All accounts require re-authentication",
    ALL_DEACTIVATED: "All accounts are deactivated",
}


class NoAccountAvailable(Exception):
    """No account can take the request. `retry_at` is the soonest reset or cooldown end, when one is known."""

    def __init__(self, reason: str, retry_at: float | None = None) -> None:
        super().__init__(_MESSAGES.get(reason, reason))
        self.reason = reason
        self.retry_at = retry_at

    @property
    def message(self) -> str:
        return str(self)


def shortage(blocks: Sequence[tuple[Block, float]]) -> NoAccountAvailable:
    """The error for a pool where every account is blocked (block, until) — decided by what dominates.

    Accounts that will come back by themselves outrank those that need a person: if every account that is
    not paused / re-auth / deactivated is spent, the pool is exhausted, even with some paused beside it.
    A short cooldown beside spent accounts does not hide the exhaustion either (clients show a usage
    limit with its reset time, and retry a 503 blindly): the pool is exhausted, and `retry_at` is the
    soonest moment any of its accounts may serve again, cooldown ends included.
    """
    if not blocks:
        return NoAccountAvailable(NO_ACCOUNTS)
    exhausted = [until for block, until in blocks if block is Block.EXHAUSTED]
    cooling = [until for block, until in blocks if block is Block.COOLDOWN]
    excluded = any(block is Block.EXCLUDED for block, _ in blocks)
    if exhausted and not excluded:
        return NoAccountAvailable(ALL_EXHAUSTED, min(exhausted + cooling))
    if exhausted or cooling:
        # Mixed with accounts just tried: those failed this request, the others come back at `retry_at`.
        reason = ALL_EXCLUDED if excluded else ALL_COOLING_DOWN
        return NoAccountAvailable(reason, min(exhausted + cooling))
    if excluded:
        return NoAccountAvailable(ALL_EXCLUDED)
    counts = Counter(block for block, _ in blocks)
    # Most common standing block; ties go to the one an operator fixes soonest (unpause, then re-login).
    top = max(_STANDING_ORDER, key=lambda block: (counts[block], -_STANDING_ORDER.index(block)))
    if counts[top]:
        return NoAccountAvailable(_STANDING_REASONS[top])
    return NoAccountAvailable(NO_PLAN_FOR_MODEL)
