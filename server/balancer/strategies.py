"""The routing strategies for requests without a session key, each picking one of the open accounts.
Owns the orderings: usage_weighted (headroom), least_inflight, round_robin (per worker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .candidates import Candidate

# (candidate, in-flight requests, headroom percent): a plain tuple, built per account per request.
Open = tuple[Candidate, float, float]
Pick = Callable[[Sequence[Open]], Open]

USAGE_WEIGHTED = "usage_weighted"
ROUND_ROBIN = "round_robin"
LEAST_INFLIGHT = "least_inflight"
STRATEGIES = (USAGE_WEIGHTED, ROUND_ROBIN, LEAST_INFLIGHT)

# Windows update only when answers arrive, so a burst would all land on the emptiest account: each
# request already in flight there counts as this many percent of used headroom.
INFLIGHT_PENALTY = 5.0


def usage_weighted(pool: Sequence[Open]) -> Open:
    """Most headroom (tighter window), less in-flight load; ties to fewer in-flight, then lowest id."""
    return min(pool, key=lambda e: (e[1] * INFLIGHT_PENALTY - e[2], e[1], e[0].account_id))


def least_inflight(pool: Sequence[Open]) -> Open:
    """Fewest in-flight requests; ties to most headroom, then lowest id."""
    return min(pool, key=lambda e: (e[1], -e[2], e[0].account_id))


class RoundRobin:
    """Cycles through account ids in order, per worker: the next id after the last one picked.

    Following ids rather than a counter keeps the cycle fair when accounts drop in and out of the pool.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = -1

    @property
    def last_id(self) -> int:
        """The account id picked last (-1 before the first pick)."""
        return self._last

    def __call__(self, pool: Sequence[Open]) -> Open:
        last = self._last
        chosen: Open | None = None
        lowest = pool[0]  # the pool is never empty (the callers raise the shortage first)
        for entry in pool:
            account_id = entry[0].account_id
            if account_id > last and (chosen is None or account_id < chosen[0].account_id):
                chosen = entry
            if account_id < lowest[0].account_id:
                lowest = entry
        if chosen is None:  # past the highest id: start again from the lowest
            chosen = lowest
        self._last = chosen[0].account_id
        return chosen

    def took(self, account_id: int) -> None:
        """An account was picked in this cycle elsewhere (open_order.py's walk): continue after it."""
        self._last = account_id


def picker(strategy: str) -> Pick:
    if strategy == USAGE_WEIGHTED:
        return usage_weighted
    if strategy == LEAST_INFLIGHT:
        return least_inflight
    if strategy == ROUND_ROBIN:
        return RoundRobin()
    raise ValueError(f"unknown routing strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
