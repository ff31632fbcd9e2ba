"""The open accounts of a pool in the order the routing would rank them, kept between requests, so that
a request without a session reads the in-flight counts of the first few accounts instead of every
account's row. Owns OpenOrder (every strategy, policy and reset preference; sessions, exclusions and
spent model buckets take pool_table's array path).

The order is the policy tiers of pool_table (preserve accounts at their floor left out unless nothing
else is open; burn_first accounts first; then, with prefer_earlier_reset, the soonest reset), each tier
most headroom first, then lowest id (round robin: id order). It stays valid while only in-flight and
request counts moved: the same roster table, model plans and reset preference, the slots' change counter
unchanged (every other write bumps it) and no cooldown, window reset or roster status end passed since
it was built. A request walks the first tier that has an account under the in-flight cap and stops as
soon as no account further down in it can beat the best one found: an account's score is never better
than its headroom alone, whatever its in-flight count. So the walk answers what pool_table.fast_select
answers; when it would get long, or every open account is at the cap, it gives up and the caller takes
the array path.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection

import numpy as np

from .availability import COOLDOWN_UNTIL, INFLIGHT, PRIMARY_RESET_AT, SECONDARY_RESET_AT
from .candidates import Candidate
from .slots import WIDTH
from .strategies import INFLIGHT_PENALTY, LEAST_INFLIGHT, ROUND_ROBIN, USAGE_WEIGHTED
from .tiers import BURN, EARLIER_RESET, PRESERVE_FLOOR, RESET_GRANULARITY_S

STRATEGIES = frozenset({USAGE_WEIGHTED, LEAST_INFLIGHT, ROUND_ROBIN})
# Accounts a walk reads before it leaves the choice to the array path (many busy accounts at the top).
MAX_WALK = 48
_MOMENTS = [COOLDOWN_UNTIL, PRIMARY_RESET_AT, SECONDARY_RESET_AT]


class OpenOrder:
    """One roster table's open accounts for one set of model plans and reset preference, in tiers, with
    what a walk needs as plain Python lists. A tier is a run of steps [start, end) of one burn class and
    reset moment."""

    __slots__ = (
        "changes",
        "valid_until",
        "candidates",
        "offsets",
        "rooms",
        "ids",
        "tiers",
        "standby",
        "_by_id",
    )

    def __init__(self, changes: int, valid_until: float, standby: bool) -> None:
        self.changes, self.valid_until, self.standby = changes, valid_until, standby
        self.candidates: list[Candidate] = []
        self.offsets: list[int] = []
        self.rooms: list[float] = []
        self.ids: list[int] = []
        self.tiers: list[tuple[int, int, bool, float]] = []  # (start, end, burn, reset moment)
        self._by_id: dict[int, tuple[list[int], list[int]]] = {}  # per tier: steps and ids in id order

    @classmethod
    def build(
        cls,
        table,
        rows: np.ndarray,
        open_positions: np.ndarray,
        room: np.ndarray,
        changes: int,
        now: float,
        reset_field: int | None,
    ) -> OpenOrder:
        """`rows`: the table's slot rows, read after `changes`; `room`: the headroom of every account."""
        # The order holds until the first moment at which an account's state changes by itself.
        moments = np.concatenate((rows[:, _MOMENTS].ravel(), table.status_until))
        later = moments[moments > now]
        standby = False
        if table.preserve.size:
            held = room.take(open_positions) <= table.floors.take(open_positions)
            standby = bool(held.all())  # nothing but reserves is open: they serve
            if held.any() and not standby:
                open_positions = open_positions[~held]
        order = cls(changes, float(later.min()) if later.size else float("inf"), standby)
        room = room.take(open_positions)
        burn = table.burn.take(open_positions) if table.has_policies else np.zeros(len(open_positions), bool)
        if reset_field is not None:
            resets = rows[open_positions, reset_field]
            moment = np.where(resets > now, np.floor(resets / RESET_GRANULARITY_S), np.inf)
        else:
            moment = np.zeros(len(open_positions))
        ranked = np.lexsort((table.ids.take(open_positions), -room, moment, ~burn))
        positions = open_positions.take(ranked)
        candidates = table.candidates
        order.candidates = [candidates[i] for i in positions.tolist()]
        order.offsets = (table.slots.take(positions) * WIDTH + INFLIGHT).tolist()
        order.rooms = room.take(ranked).tolist()
        order.ids = table.ids.take(positions).tolist()
        burn, moment = burn.take(ranked).tolist(), moment.take(ranked).tolist()
        start = 0
        for step in range(1, len(positions) + 1):
            if step == len(positions) or (burn[step], moment[step]) != (burn[start], moment[start]):
                order.tiers.append((start, step, burn[start], moment[start]))
                start = step
        return order

    def pick(self, view, strategy: str, cap: float, last_id: int = -1) -> tuple[Candidate, str | None] | None:
        """The choice among the open accounts under the cap and the policy tier that decided it (None: the
        strategy alone), reading in-flight counts from `view` (the slots' flat memory); None when the
        walk cannot decide within MAX_WALK accounts. `last_id`: the account round robin picked last."""
        budget = MAX_WALK
        for index, (start, end, burn, moment) in enumerate(self.tiers):
            if strategy == ROUND_ROBIN:
                best, steps = self._next_after(index, view, cap, last_id, budget)
            else:
                best, steps = self._best(start, end, view, strategy, cap, budget)
            budget -= steps
            if best is None:
                if budget <= 0:
                    return None
                continue  # every account of this tier is at the cap: the next tier
            reason = PRESERVE_FLOOR if self.standby else (BURN if burn else None)
            if reason is None and moment != np.inf:
                later = self._under_cap_after(index, view, cap, budget)
                if later is None:
                    return None
                if later:
                    reason = EARLIER_RESET
            return self.candidates[best], reason
        return None

    def _best(self, start: int, end: int, view, strategy: str, cap: float, budget: int):
        """(step of the strategy's choice in the tier or None, accounts read)."""
        least = strategy == LEAST_INFLIGHT
        offsets, rooms, ids = self.offsets, self.rooms, self.ids
        best = -1
        best_first = best_inflight = 0.0
        for step in range(start, end):
            room = rooms[step]
            if best >= 0:
                if least:
                    if best_inflight == 0.0:  # the first idle account in headroom order wins
                        return best, step - start
                elif -room > best_first or (-room == best_first and best_inflight == 0.0):
                    return best, step - start  # nothing further down can score better
            if step - start == budget:
                return None, budget
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
        return (best if best >= 0 else None), end - start

    def _next_after(self, index: int, view, cap: float, last_id: int, budget: int):
        """Round robin in a tier: the lowest id above `last_id` under the cap, else the lowest id under
        the cap; (its step or None, accounts read)."""
        steps, ids = self._id_order(index)
        count = len(steps)
        first = bisect_right(ids, last_id)
        for k in range(min(count, budget)):
            step = steps[(first + k) % count]
            if view[self.offsets[step]] < cap:
                return step, k + 1
        return None, min(count, budget)

    def _id_order(self, index: int) -> tuple[list[int], list[int]]:
        found = self._by_id.get(index)
        if found is None:
            start, end = self.tiers[index][:2]
            steps = sorted(range(start, end), key=self.ids.__getitem__)
            found = self._by_id[index] = (steps, [self.ids[step] for step in steps])
        return found

    def _under_cap_after(self, index: int, view, cap: float, budget: int) -> bool | None:
        """Whether a later reset has an account under the cap (the reset preference then decided); None
        when that takes more than `budget` reads. Asked of a tier of accounts without burn_first only,
        so every later tier is of the same kind."""
        offsets = self.offsets
        for start, end, _, _ in self.tiers[index + 1 :]:
            for step in range(start, end):
                if budget <= 0:
                    return None
                budget -= 1
                if view[offsets[step]] < cap:
                    return True
        return False


def usable(strategy: str, exclude: Collection[int], blocked_until) -> bool:
    """Whether a request without a session can be decided by an order: a strategy it knows, and no
    account excluded (a retry) or blocked for its model (those change from request to request)."""
    return strategy in STRATEGIES and not exclude and not blocked_until
