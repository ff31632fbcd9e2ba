"""How much of a window one request uses, per account slot: learned from the shared slots (window
percent deltas over request-count deltas). Owns UsageRates; per worker, refreshed every few seconds.

The request counter counts this host's requests only: on several replicas an account's windows also
move with the others' requests, so the rate reads high, which makes placement careful, not wrong.
"""

from __future__ import annotations

import numpy as np

from .slots import Field

REFRESH_S = 5.0
DEFAULT_PERCENT_PER_REQUEST = 1.0  # until an account has shown its own (a Plus 5 h window: ~100 turns)
_ALPHA = 0.3
# Windows move in whole percents: fold a sample in once a point has moved or enough requests have gone.
_MIN_REQUESTS = 20
_USED = (int(Field.PRIMARY_USED), int(Field.SECONDARY_USED))
_REQUESTS = int(Field.REQUESTS)


class UsageRates:
    """Percent of each window (primary, secondary) per request, by slot."""

    def __init__(self, capacity: int) -> None:
        self.per_request = np.full((capacity, 2), np.nan)  # learned; nan: not yet
        self._filled = np.full((capacity, 2), DEFAULT_PERCENT_PER_REQUEST)  # what placement reads
        self._marks = np.full((capacity, 3), np.nan)  # primary used, secondary used, requests
        self._next_refresh = 0.0

    def refresh(self, rows: np.ndarray, now: float) -> None:
        """Fold in what the slots show since the last marks (cheap: a few array operations)."""
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_S
        current = np.empty_like(self._marks)
        current[:, 0:2] = rows[:, _USED]
        current[:, 2] = rows[:, _REQUESTS]
        moved = current - self._marks  # nan where there is no mark yet
        served = moved[:, 2]
        with np.errstate(invalid="ignore"):
            reset = (moved[:, 0] < 0) | (moved[:, 1] < 0) | (served < 0)  # a window reset or a reused slot
            ready = (
                ~reset & (served >= 1) & ((moved[:, 0] >= 1) | (moved[:, 1] >= 1) | (served >= _MIN_REQUESTS))
            )
            sample = moved[:, 0:2] / np.where(ready, served, 1.0)[:, None]
        learned = self.per_request
        fold = ready[:, None] & np.ones((1, 2), dtype=bool)
        blended = np.where(np.isnan(learned), sample, learned * (1 - _ALPHA) + sample * _ALPHA)
        self.per_request = np.where(fold, blended, learned)
        remark = ready | reset | np.isnan(self._marks[:, 2])
        self._marks = np.where(remark[:, None], current, self._marks)
        # Accounts not yet measured take the pool's median; a window that did not move still counts a
        # little per request.
        known = self.per_request[~np.isnan(self.per_request[:, 0])]
        fallback = np.median(known, axis=0) if len(known) else np.full(2, DEFAULT_PERCENT_PER_REQUEST)
        self._filled = np.maximum(np.where(np.isnan(self.per_request), fallback, self.per_request), 1e-3)

    def of_slots(self, slots: np.ndarray) -> np.ndarray:
        """(n, 2) percent of the primary and secondary window per request of these slots."""
        return self._filled[slots]
