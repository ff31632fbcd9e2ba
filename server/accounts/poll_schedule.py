"""When each account's usage is polled next: spread over the interval, later for accounts that keep
answering the same. Owns PollSchedule (per worker, in memory: a restart only re-spreads the polls).

Polling every account at the top of each interval made 500 accounts a burst of 500 requests a minute.
Each account gets its own moment in the interval (random at first, then interval x 0.9-1.1 later);
an account whose windows read the same as last time waits twice as long (up to MAX_BACKOFF intervals),
and any change brings it back to every interval. Live requests update the windows anyway.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Hashable

MAX_BACKOFF = 8
# The job looks for due accounts this many times per interval (but not more than once a second).
TICKS_PER_INTERVAL = 12


class PollSchedule:
    def __init__(self, interval_s: float, rng: random.Random | None = None) -> None:
        self.interval_s = interval_s
        self._rng = rng or random.Random()
        self._due: dict[int, float] = {}
        self._backoff: dict[int, int] = {}
        self._answers: dict[int, Hashable] = {}

    @property
    def tick_s(self) -> float:
        return max(min(self.interval_s, 1.0), self.interval_s / TICKS_PER_INTERVAL)

    def due(self, account_ids: Collection[int], now: float) -> list[int]:
        """The accounts to poll now. A new account gets a random moment within the next interval."""
        for gone in self._due.keys() - set(account_ids):
            self.forget(gone)
        due = []
        for account_id in account_ids:
            at = self._due.get(account_id)
            if at is None:
                at = self._due[account_id] = now + self._rng.uniform(0.0, self.interval_s)
            if at <= now:
                due.append(account_id)
        return due

    def polled(self, account_id: int, answer: Hashable | None, now: float) -> float:
        """Record a poll (answer None: it failed); returns when the account is due next."""
        backoff = 1
        if answer is not None and self._answers.get(account_id) == answer:
            backoff = min(self._backoff.get(account_id, 1) * 2, MAX_BACKOFF)
        self._backoff[account_id] = backoff
        if answer is not None:
            self._answers[account_id] = answer
        at = self._due[account_id] = now + self.interval_s * backoff * self._rng.uniform(0.9, 1.1)
        return at

    def backoff(self, account_id: int) -> int:
        return self._backoff.get(account_id, 1)

    def forget(self, account_id: int) -> None:
        for table in (self._due, self._backoff, self._answers):
            table.pop(account_id, None)
