"""The open accounts of a large pool in order of headroom, kept between requests, so that a request
without a session reads the in-flight counts of the first few accounts instead of every account's row.
Owns OpenOrder (every strategy; sessions, exclusions, policies and the reset preference take
pool_table's array path).

An order stays valid while only in-flight and request counts moved: the same roster table and model
plans, the slots' change counter unchanged (every other write bumps it) and no cooldown, window reset or
roster status end passed since it was built. A request walks it from the top and stops as soon as no
account further down can beat the best one found: an account's score is never better than its headroom
alone, whatever its in-flight count (round robin walks in id order from the last id picked). So the
walk answers what pool_table.fast_select answers; when it would get long, or every open account is at
the in-flight cap, it gives up and the caller takes the array path.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection

import numpy as np

from .availability import COOLDOWN_UNTIL, INFLIGHT, PRIMARY_RESET_AT, SECONDARY_RESET_AT
from .candidates import Candidate
from .slots import WIDTH
from .strategies import INFLIGHT_PENALTY, LEAST_INFLIGHT, ROUND_ROBIN, USAGE_WEIGHTED

STRATEGIES = frozenset({USAGE_WEIGHTED, LEAST_INFLIGHT, ROUND_ROBIN})
# Accounts a walk reads before it leaves the choice to the array path (many busy accounts at the top).
MAX_WALK = 48
_MOMENTS = [COOLDOWN_UNTIL, PRIMARY_RESET_AT, SECONDARY_RESET_AT]


class OpenOrder:
    """One roster table's open accounts for one set of model plans, most headroom first (then lowest id,
    the strategies' tie-break), with what a walk needs as plain Python lists."""

    __slots__ = ("changes", "valid_until", "candidates", "offsets", "rooms", "ids", "_by_id", "_sorted_ids")

    def __init__(
        self,
        changes: int,
        valid_until: float,
        candidates: list[Candidate],
        offsets: list[int],
        rooms: list[float],
        ids: list[int],
    ) -> None:
        self.changes, self.valid_until = changes, valid_until
        self.candidates, self.offsets, self.rooms, self.ids = candidates, offsets, rooms, ids
        self._by_id: list[int] | None = None  # steps in id order, for round robin (built on first use)
        self._sorted_ids: list[int] = []

    @classmethod
    def build(
        cls,
        table,
        rows: np.ndarray,
        open_positions: np.ndarray,
        room: np.ndarray,
        changes: int,
        now: float,
    ) -> OpenOrder:
        """`rows`: the table's slot rows, read after `changes`; `room`: the headroom of every account."""
        room = room.take(open_positions)
        ranked = np.lexsort((table.ids.take(open_positions), -room))
        order = open_positions.take(ranked)
        # The order holds until the first moment at which an account's state changes by itself.
        moments = np.concatenate((rows[:, _MOMENTS].ravel(), table.status_until))
        later = moments[moments > now]
        candidates = table.candidates
        return cls(
            changes,
            float(later.min()) if later.size else float("inf"),
            [candidates[i] for i in order.tolist()],
            (table.slots.take(order) * WIDTH + INFLIGHT).tolist(),
            room.take(ranked).tolist(),
            table.ids.take(order).tolist(),
        )

    def pick(self, view, strategy: str, cap: float, last_id: int = -1) -> Candidate | None:
        """The strategy's choice among the open accounts under the cap, reading in-flight counts from
        `view` (the slots' flat memory); None when the walk cannot decide within MAX_WALK accounts.
        `last_id`: the account round robin picked last."""
        if strategy == ROUND_ROBIN:
            return self._next_after(view, cap, last_id)
        least = strategy == LEAST_INFLIGHT
        offsets, rooms, ids = self.offsets, self.rooms, self.ids
        best = -1
        best_first = best_inflight = 0.0
        for step in range(len(offsets)):
            room = rooms[step]
            if best >= 0:
                if least:
                    if best_inflight == 0.0:  # the first idle account in headroom order wins
                        return self.candidates[best]
                elif -room > best_first or (-room == best_first and best_inflight == 0.0):
                    return self.candidates[best]  # nothing further down can score better
            if step == MAX_WALK:
                return None
            inflight = view[offsets[step]]
            if inflight >= cap:
                continue
            if least:
                better = best < 0 or (inflight, -room, ids[step]) < (best_inflight, -rooms[best], ids[best])
                first = inflight
            else:
                first = inflight * INFLIGHT_PENALTY - room
                better = best < 0 or (first, inflight, ids[step]) < (best_first, best_inflight, ids[best])
            if better:
                best, best_first, best_inflight = step, first, inflight
        return self.candidates[best] if best >= 0 else None

    def _next_after(self, view, cap: float, last_id: int) -> Candidate | None:
        """The lowest id above `last_id` under the cap, else the lowest id under the cap."""
        if self._by_id is None:
            self._by_id = sorted(range(len(self.ids)), key=self.ids.__getitem__)
            self._sorted_ids = [self.ids[step] for step in self._by_id]
        by_id, offsets, count = self._by_id, self.offsets, len(self._by_id)
        start = bisect_right(self._sorted_ids, last_id)
        for k in range(min(count, MAX_WALK)):
            step = by_id[(start + k) % count]
            if view[offsets[step]] < cap:
                return self.candidates[step]
        return None


def usable(strategy: str, exclude: Collection[int], blocked_until, reset_field, has_policies: bool) -> bool:
    """Whether a request without a session can be decided by an order: no account excluded or blocked
    for its model, no reset preference and no routing policies (their tiers need the whole pool)."""
    if strategy not in STRATEGIES or has_policies:
        return False
    return not exclude and not blocked_until and reset_field is None
