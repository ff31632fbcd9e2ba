"""Headroom-aware placement: how many more turns each open account can likely take before a window runs
out, net of the turns its live conversations are still expected to take. Owns Placer; a new conversation
goes to an account with room for a long one (SessionBook.long_turns), so it is not moved mid-way.
"""

from __future__ import annotations

import numpy as np

from .availability import CREDITS_USABLE, PRIMARY_RESET_AT, PRIMARY_USED, SECONDARY_RESET_AT, SECONDARY_USED
from .rates import UsageRates
from .sessions import SessionBook

SPARE_TTL_S = 1.0
_USED = [PRIMARY_USED, SECONDARY_USED]
_RESETS = [PRIMARY_RESET_AT, SECONDARY_RESET_AT]


class Placer:
    """One per worker, with the worker's session book and learned per-request rates."""

    def __init__(self, rates: UsageRates, book: SessionBook) -> None:
        self.rates = rates
        self.book = book
        # (roster table, when, spare turns of every account): windows move only as answers arrive, so
        # the whole pool is measured once a SPARE_TTL_S, not for every new conversation.
        self._spare: tuple[object, float, np.ndarray] | None = None

    def spare_of(self, table, rows: np.ndarray, positions: np.ndarray, now: float) -> np.ndarray:
        """spare_turns of these positions of a roster table (`rows`: the table's slot rows)."""
        cached = self._spare
        if cached is None or cached[0] is not table or not 0.0 <= now - cached[1] < SPARE_TTL_S:
            cached = self._spare = (table, now, self.spare_turns(rows, table.slots, table.floors, now))
        return cached[2][positions]

    def placed(self, table, position: int) -> None:
        """A conversation was placed there: count its expected turns until the next measure."""
        cached = self._spare
        if cached is not None and cached[0] is table:
            cached[2][position] -= self.book.mean_turns

    def spare_turns(self, rows: np.ndarray, slots: np.ndarray, floors: np.ndarray, now: float) -> np.ndarray:
        """Turns left before the first window (less a preserve floor) is spent, minus live sessions' share.
        `rows` are the slot rows of `slots`; a window past its reset counts as fresh, and one that resets
        before those turns would be taken at the usual pace is no limit (its capacity would expire)."""
        resets = rows[:, _RESETS]
        used = np.where((resets == 0.0) | (resets > now), rows[:, _USED], 0.0)
        left = np.maximum(0.0, 100.0 - used - np.maximum(floors, 0.0)[:, None]) / self.rates.of_slots(slots)
        left[rows[:, CREDITS_USABLE] != 0.0, 1] = np.inf  # paid credits lift the weekly window
        spare = left - self.book.committed(slots)[:, None]
        renewed = (resets > now) & (resets - now <= np.maximum(spare, 0.0) * self.book.turn_interval)
        spare[renewed] = np.inf
        return spare.min(axis=1)

    def fits(self, spare: np.ndarray) -> np.ndarray:
        return spare >= self.book.long_turns
