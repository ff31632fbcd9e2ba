"""The balancer: picks the account for each request and keeps its live state in the shared slots.
Owns Balancer and Selection; pure and synchronous (no I/O, no database, no waiting) for the hot path."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from server.upstream.failures import UpstreamFailure
from server.upstream.ratelimits import RateLimitSnapshot

from . import cooldowns, pool_table
from .availability import INFLIGHT, PASSING, Block, headroom, passing_block, standing_block
from .candidates import ACTIVE, Candidate
from .shortage import shortage
from .slots import AccountSlots, Field
from .stickiness import rendezvous_weight, session_digest
from .strategies import Open, picker
from .windows import apply_to_slots

STICKY = "sticky"
STICKY_MOVED = "sticky_moved:"
AT_CAPACITY = "at_capacity"


@dataclass(frozen=True, slots=True)
class Selection:
    """The account for this attempt and why. `over_cap`: every open account is at the in-flight cap and
    this is the best of them anyway; the caller decides whether to wait for a release or go ahead."""

    candidate: Candidate
    routing: str  # "sticky", "sticky_moved:<reason>", or the strategy name
    over_cap: bool = False


class Balancer:
    """One per worker. Workers of a host share `slots`; the roster (candidates) comes with each call."""

    def __init__(self, slots: AccountSlots, strategy: str, inflight_cap: int) -> None:
        if inflight_cap < 1:
            raise ValueError("inflight_cap must be at least 1")
        self._slots = slots
        self._pick = picker(strategy)
        self.strategy = strategy
        self.sticky = True
        self.inflight_cap = inflight_cap
        # Pools of this many accounts or more are decided with arrays (pool_table.py), not the loop.
        self.table_threshold = pool_table.MIN_ACCOUNTS
        self._table: pool_table.PoolTable | None = None

    def configure(self, strategy: str, sticky: bool) -> None:
        """Apply the run-time routing settings; the next select() uses them. A strategy that did not
        change keeps its picker (and round robin its position)."""
        if strategy != self.strategy:
            self._pick = picker(strategy)
            self.strategy = strategy
        self.sticky = sticky

    def select(
        self,
        candidates: Sequence[Candidate],
        *,
        session_key: str | None,
        exclude: Collection[int] = (),
        now: float,
        model_plans: Collection[str] | None = None,
        blocked_until: Mapping[int, float] | None = None,
    ) -> Selection:
        """The account for the next attempt; raises NoAccountAvailable when none can take it.
        `blocked_until`: accounts whose bucket for the requested model is spent, until its reset."""
        if self.strategy in pool_table.STRATEGIES and len(candidates) >= self.table_threshold:
            return self._select_from_table(candidates, session_key, exclude, now, model_plans, blocked_until)
        snapshot = self._slots.snapshot
        open_accounts: list[Open] = []
        blocked: list[tuple[Candidate, Block, float]] = []
        any_plan = model_plans is None
        for candidate in candidates:
            # Most accounts are active on a fitting plan: skip the standing check for them.
            if candidate.status != ACTIVE or not (any_plan or candidate.plan_type in model_plans):
                block = standing_block(candidate, model_plans)
                if block is not None:
                    blocked.append((candidate, block, 0.0))
                    continue
            if blocked_until is not None and candidate.account_id in blocked_until:
                blocked.append((candidate, Block.EXHAUSTED, blocked_until[candidate.account_id]))
                continue
            row = snapshot(candidate.slot)
            passing = passing_block(candidate, row, candidate.account_id in exclude, now)
            if passing is None:
                open_accounts.append((candidate, row[INFLIGHT], headroom(row, now)))
            else:
                blocked.append((candidate, passing[0], passing[1]))
        if not open_accounts:
            raise shortage([(block, until) for _, block, until in blocked])
        if session_key and self.sticky:
            return self._sticky(session_key, open_accounts, blocked)
        cap = self.inflight_cap
        under_cap = [entry for entry in open_accounts if entry[1] < cap]
        chosen = self._pick(under_cap or open_accounts)
        return Selection(chosen[0], self.strategy, not under_cap)

    def _select_from_table(
        self,
        candidates: Sequence[Candidate],
        session_key: str | None,
        exclude: Collection[int],
        now: float,
        model_plans: Collection[str] | None,
        blocked_until: Mapping[int, float] | None,
    ) -> Selection:
        table = self._table
        if table is None or table.candidates is not candidates:
            table = pool_table.PoolTable(candidates)
            # The roster hands out a new tuple when it changes; a list may change in place.
            self._table = table if isinstance(candidates, tuple) else None
        sticky = bool(session_key) and self.sticky
        picked = pool_table.fast_select(
            table,
            self._slots.rows,
            strategy=self.strategy,
            pick=self._pick,
            inflight_cap=self.inflight_cap,
            session=session_digest(session_key) if sticky else None,
            exclude=exclude,
            now=now,
            model_plans=model_plans,
            blocked_until=blocked_until,
        )
        if isinstance(picked, list):
            raise shortage([(block, until) for _, block, until in picked])
        if isinstance(picked, pool_table.StrategyPick):
            return Selection(picked.candidate, self.strategy, picked.over_cap)
        if picked.top_block is not None:
            routing = STICKY_MOVED + picked.top_block.value
        elif picked.moved_at_capacity:
            routing = STICKY_MOVED + AT_CAPACITY
        else:
            routing = STICKY
        return Selection(picked.candidate, routing, picked.over_cap)

    def _sticky(
        self, session_key: str, open_accounts: list[Open], blocked: list[tuple[Candidate, Block, float]]
    ) -> Selection:
        """The rendezvous winner among open accounts under the cap; says why when that is not the session's
        first choice (the top of all accounts that will come back by themselves)."""
        session = session_digest(session_key)
        cap = self.inflight_cap
        best_open = best_under = None
        best_open_weight = best_under_weight = -1
        for entry in open_accounts:
            weight = rendezvous_weight(session, entry[0].rendezvous_salt)
            if weight > best_open_weight:
                best_open, best_open_weight = entry, weight
            if entry[1] < cap and weight > best_under_weight:
                best_under, best_under_weight = entry, weight
        top_block = None
        top_block_weight = best_open_weight
        for candidate, block, _ in blocked:
            if block in PASSING:
                weight = rendezvous_weight(session, candidate.rendezvous_salt)
                if weight > top_block_weight:
                    top_block, top_block_weight = block, weight
        chosen = best_under if best_under is not None else best_open
        if top_block is not None:
            routing = STICKY_MOVED + top_block.value
        elif chosen is not best_open:
            routing = STICKY_MOVED + AT_CAPACITY
        else:
            routing = STICKY
        return Selection(chosen[0], routing, best_under is None)

    def acquire(self, candidate: Candidate) -> None:
        """Count a request in flight on the account (atomic across the host's workers)."""
        self._slots.add_inflight(candidate.slot, 1)
        self._slots.add(candidate.slot, Field.REQUESTS, 1)

    def release(self, candidate: Candidate) -> None:
        """The request ended (any way). Never below zero, even if the slot was reset meanwhile."""
        self._slots.add_inflight(candidate.slot, -1)

    def record_success(self, candidate: Candidate, snapshot: RateLimitSnapshot | None, now: float) -> None:
        """The upstream answered: clear the failure streak and take the windows it reported."""
        if self._slots.get(candidate.slot, Field.FAILURE_STREAK):
            self._slots.set(candidate.slot, Field.FAILURE_STREAK, 0.0)
        if snapshot is not None:
            apply_to_slots(self._slots, candidate.slot, snapshot)

    def note_windows(self, candidate: Candidate, snapshot: RateLimitSnapshot | None) -> None:
        """The upstream reported the account's windows (headers, a codex.rate_limits event)."""
        if snapshot is not None:
            apply_to_slots(self._slots, candidate.slot, snapshot)

    def record_failure(self, candidate: Candidate, failure: UpstreamFailure, now: float) -> float:
        """Bench the account as the failure warrants; returns the cooldown end (`now` if not benched)."""
        return cooldowns.record_failure(self._slots, candidate.slot, failure, now)
