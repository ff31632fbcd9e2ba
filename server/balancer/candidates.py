"""What the balancer knows about each account from the roster: id, slot, durable status and plan.
Owns Candidate and the account status names; live state (in-flight, windows, cooldowns) is in the slots."""

from __future__ import annotations

from dataclasses import dataclass, field

from .policies import NORMAL
from .stickiness import account_salt

ACTIVE = "active"
RATE_LIMITED = "rate_limited"
QUOTA_EXCEEDED = "quota_exceeded"
PAUSED = "paused"
REAUTH_REQUIRED = "reauth_required"
DEACTIVATED = "deactivated"

STATUSES = frozenset({ACTIVE, RATE_LIMITED, QUOTA_EXCEEDED, PAUSED, REAUTH_REQUIRED, DEACTIVATED})


@dataclass(frozen=True, slots=True)
class Candidate:
    account_id: int
    slot: int
    status: str
    plan_type: str
    # Epoch seconds when rate_limited / quota_exceeded ends by itself (0 or past: already over).
    status_until: float = 0.0
    policy: str = NORMAL  # server.balancer.policies
    reserve_percent: float = 0.0  # preserve: held back below this much left in its tighter window
    # Built once per roster load so that sticky selection hashes only the session key per request.
    rendezvous_salt: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rendezvous_salt", account_salt(self.account_id))
