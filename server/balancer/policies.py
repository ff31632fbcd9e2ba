"""Per-account routing policies: normal, burn_first (spend it before the others) and preserve (keep a
floor of its windows in reserve). Owns the names, RoutingPolicy and its validation; selection acts on it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

NORMAL = "normal"
BURN_FIRST = "burn_first"
PRESERVE = "preserve"
POLICIES = (NORMAL, BURN_FIRST, PRESERVE)
DEFAULT_RESERVE_PERCENT = 20.0


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    policy: str = NORMAL
    # preserve only: below this much left in its tighter window the account serves only when no other can.
    reserve_percent: float = 0.0

    @classmethod
    def parse(cls, policy: Any, reserve_percent: Any = None) -> RoutingPolicy:
        """Raises ValueError with a message an operator can act on."""
        if policy not in POLICIES:
            raise ValueError(f'"routing_policy" must be one of {", ".join(POLICIES)}')
        if policy != PRESERVE:
            if reserve_percent not in (None, 0, 0.0):
                raise ValueError('"reserve_percent" applies to the preserve policy only')
            return cls(policy, 0.0)
        if reserve_percent is None:
            return cls(PRESERVE, DEFAULT_RESERVE_PERCENT)
        if (
            isinstance(reserve_percent, bool)
            or not isinstance(reserve_percent, int | float)
            or not math.isfinite(reserve_percent)
            or not 0 < reserve_percent <= 100
        ):
            raise ValueError('"reserve_percent" must be a number above 0 and at most 100 (100: standby only)')
        return cls(PRESERVE, float(reserve_percent))

    def describe(self) -> str:
        if self.policy == PRESERVE:
            return f"preserve (keep {self.reserve_percent:g} % in reserve)"
        return self.policy

    def public(self) -> dict:
        return {"routing_policy": self.policy, "reserve_percent": self.reserve_percent}
