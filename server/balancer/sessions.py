"""The conversations this worker has placed: session digest -> account, with its turns so far, and the
running estimate of how long conversations run. Owns SessionBook: bounded (least recently used out),
idle sessions end; what is live on each slot is kept as arrays for placement to read.

Per worker on purpose: no lock and no shared memory on the hot path. A conversation's turns usually
reach one worker (keep-alive connections and WebSockets stay on theirs); a worker that has not seen a
session places it by the same rule over the same shared slots, so it mostly agrees (see docs/routing.md).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

MAX_SESSIONS = 50_000
IDLE_S = 1800.0  # a conversation silent this long has ended
PRIOR_TURNS = 8.0  # the estimate before any conversation has ended here
PRIOR_TURN_INTERVAL_S = 60.0
_ALPHA = 0.05
_EXPIRE_BATCH = 32  # ended sessions retired per call, so no call pays for a long sweep


class SessionBook:
    """Entries are [account_id, slot, turns, last_seen, first_seen]; ordered by last use."""

    def __init__(self, slot_capacity: int, max_sessions: int = MAX_SESSIONS, idle_s: float = IDLE_S) -> None:
        self._entries: OrderedDict[int, list] = OrderedDict()
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.live = np.zeros(slot_capacity)  # sessions placed on each slot
        self.turns = np.zeros(slot_capacity)  # their turns so far
        self.mean_turns = PRIOR_TURNS
        self.deviation = PRIOR_TURNS / 2
        self.turn_interval = PRIOR_TURN_INTERVAL_S  # seconds between a conversation's turns

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def long_turns(self) -> float:
        """A long conversation by recent measure: what a new one should find room for."""
        return self.mean_turns + 2.0 * self.deviation

    def get(self, digest: int, now: float) -> list | None:
        entry = self._entries.get(digest)
        if entry is not None and now - entry[3] > self.idle_s:
            self._end(digest)
            return None
        return entry

    def turn(self, digest: int, entry: list, now: float) -> None:
        """One more turn of a remembered session on its account."""
        entry[2] += 1
        entry[3] = now
        self.turns[entry[1]] += 1
        self._entries.move_to_end(digest)

    def place(self, digest: int, account_id: int, slot: int, now: float) -> None:
        """A new session (or one moved): remember it on this account."""
        entry = self._entries.pop(digest, None)
        turns, first_seen = 1, now
        if entry is not None:
            self._leave(entry)
            turns, first_seen = turns + entry[2], entry[4]
        self._entries[digest] = [account_id, slot, turns, now, first_seen]
        self.live[slot] += 1
        self.turns[slot] += turns
        self.expire(now)

    def committed(self, slots: np.ndarray) -> np.ndarray:
        """Turns the live sessions of these slots are still expected to take."""
        return np.maximum(0.0, self.live[slots] * self.mean_turns - self.turns[slots])

    def expire(self, now: float) -> None:
        """End sessions idle too long (the oldest first) and keep the book within its size."""
        entries = self._entries
        for _ in range(_EXPIRE_BATCH):
            if not entries:
                return
            digest, entry = next(iter(entries.items()))
            idle = now - entry[3] > self.idle_s
            if not idle and len(entries) <= self.max_sessions:
                return
            # One pushed out for room may not have ended: only those that went quiet teach the estimate.
            self._end(digest, learn=idle)

    def _end(self, digest: int, learn: bool = True) -> None:
        entry = self._entries.pop(digest)
        self._leave(entry)
        if not learn:
            return
        turns = float(entry[2])
        if turns > 1:
            self.turn_interval += _ALPHA * ((entry[3] - entry[4]) / (turns - 1) - self.turn_interval)
        self.deviation += _ALPHA * (abs(turns - self.mean_turns) - self.deviation)
        self.mean_turns += _ALPHA * (turns - self.mean_turns)

    def _leave(self, entry: list) -> None:
        self.live[entry[1]] -= 1
        self.turns[entry[1]] -= entry[2]
