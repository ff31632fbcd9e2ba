"""The balancer: picks the account for each request and keeps its live state in the shared slots.
Owns Balancer and Selection; pure and synchronous (no I/O, no database, no waiting) for the hot path."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from server.upstream.failures import UpstreamFailure
from server.upstream.ratelimits import RateLimitSnapshot

from . import cooldowns, open_order, pool_table, tiers
from .availability import INFLIGHT, PASSING, Block, headroom, passing_block, standing_block
from .candidates import ACTIVE, Candidate
from .placement import Placer
from .policies import NORMAL
from .rates import UsageRates
from .sessions import SessionBook
from .shortage import NoAccountAvailable, shortage
from .slots import AccountSlots, Field
from .stickiness import rendezvous_weight, session_digest
from .strategies import Open, RoundRobin, picker
from .windows import apply_to_slots

STICKY = "sticky"
STICKY_MOVED = "sticky_moved:"
AT_CAPACITY = "at_capacity"
GONE = "unavailable"  # a remembered session's account left the roster (or this key may not use it)

# Session placement: "headroom" remembers each conversation and places new ones where a long one fits;
# "rendezvous" is the stateless hash (no memory: every worker and replica agrees without talking).
HEADROOM_PLACEMENT = "headroom"
RENDEZVOUS_PLACEMENT = "rendezvous"
PLACEMENTS = (HEADROOM_PLACEMENT, RENDEZVOUS_PLACEMENT)
TABLES = 16  # candidate tuples whose array tables are kept: the roster's and those of limited keys
# prefer_earlier_reset: which window's reset orders the accounts with room (off: the strategy alone).
RESET_OFF = "off"
RESET_FIELDS = {RESET_OFF: None, "5h": int(Field.PRIMARY_RESET_AT), "weekly": int(Field.SECONDARY_RESET_AT)}


@dataclass(frozen=True, slots=True)
class Selection:
    """The account for this attempt and why. `over_cap`: every open account is at the in-flight cap and
    this is the best of them anyway; the caller decides whether to wait for a release or go ahead."""

    candidate: Candidate
    # "sticky", "sticky_moved:<reason>", a policy tier or "headroom" (pool_table's reasons), or the strategy
    routing: str
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
        # A roster of any size keeps an open order for requests without a session (open_order.py): a
        # walk of its first accounts costs less than the loop even at 3 accounts.
        self.order_threshold = 1
        self.keep_order = True  # False: always the array path (tests compare the two)
        self._tables: OrderedDict[int, pool_table.PoolTable] = OrderedDict()
        self._reset_field: int | None = None
        self.placement = HEADROOM_PLACEMENT
        self.sessions = SessionBook(slots.capacity)
        self._placer = Placer(UsageRates(slots.capacity), self.sessions)

    def configure(
        self,
        strategy: str,
        sticky: bool,
        *,
        prefer_earlier_reset: str = RESET_OFF,
        placement: str = HEADROOM_PLACEMENT,
    ) -> None:
        """Apply the run-time routing settings; the next select() uses them. A strategy that did not
        change keeps its picker (and round robin its position)."""
        if strategy != self.strategy:
            self._pick = picker(strategy)
            self.strategy = strategy
        self.sticky = sticky
        self._reset_field = RESET_FIELDS[prefer_earlier_reset]
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown session placement {placement!r}")
        self.placement = placement

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
        # The session key when this request sticks to one (None: it does not).
        session = session_key if session_key and self.sticky else None
        if session is not None and self.placement == HEADROOM_PLACEMENT:
            return self._placed(candidates, session_digest(session), exclude, now, model_plans, blocked_until)
        if (
            len(candidates) >= self.table_threshold
            or (
                session is None
                and len(candidates) >= self.order_threshold
                and isinstance(candidates, tuple)
                and self.strategy in open_order.STRATEGIES
            )
            or (self._reset_field is not None and session is None)
            or any(c.policy != NORMAL for c in candidates)
        ):
            digest = session_digest(session) if session is not None else None
            return self._select_from_table(candidates, digest, exclude, now, model_plans, blocked_until)
        snapshot = self._slots.snapshot
        open_accounts: list[Open] = []
        blocked: list[tuple[Candidate, Block, float]] = []
        for candidate in candidates:
            # Most accounts are active on a fitting plan: skip the standing check for them.
            if candidate.status != ACTIVE or not (model_plans is None or candidate.plan_type in model_plans):
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
        if session is not None:
            return self._sticky(session, open_accounts, blocked)
        cap = self.inflight_cap
        under_cap = [entry for entry in open_accounts if entry[1] < cap]
        chosen = self._pick(under_cap or open_accounts)
        return Selection(chosen[0], self.strategy, not under_cap)

    def _placed(
        self,
        candidates: Sequence[Candidate],
        digest: int,
        exclude: Collection[int],
        now: float,
        model_plans: Collection[str] | None,
        blocked_until: Mapping[int, float] | None,
    ) -> Selection:
        """A remembered conversation stays on its account while that can serve; a new one (or one whose
        account cannot serve now) is placed where a long conversation fits, and remembered there."""
        book = self.sessions
        entry = book.get(digest, now)
        moved = None
        if entry is not None:
            candidate = self._remembered(candidates, entry[0])
            if candidate is None:
                moved = STICKY_MOVED + GONE
            elif (block := self._block_of(candidate, exclude, now, model_plans, blocked_until)) is not None:
                moved = STICKY_MOVED + block
            elif self._slots.get(candidate.slot, Field.INFLIGHT) < self.inflight_cap:
                if not exclude:  # a failover's retry is not a new turn
                    book.turn(digest, entry, now)
                return Selection(candidate, STICKY)
            else:  # at the cap: this turn elsewhere if another can take it now
                try:
                    other = self._place(
                        candidates, digest, {*exclude, candidate.account_id}, now, model_plans, blocked_until
                    )
                except NoAccountAvailable:
                    return Selection(candidate, STICKY, True)
                if other.over_cap:
                    return Selection(candidate, STICKY, True)
                return Selection(other.candidate, STICKY_MOVED + AT_CAPACITY)
        placed = self._place(candidates, digest, exclude, now, model_plans, blocked_until)
        book.place(digest, placed.candidate.account_id, placed.candidate.slot, now)
        # A placement always names its tier (headroom at least); the type allows None for the strategies'.
        return Selection(placed.candidate, moved or placed.reason or tiers.HEADROOM, placed.over_cap)

    def _place(self, candidates, digest, exclude, now, model_plans, blocked_until) -> pool_table.StrategyPick:
        self._placer.rates.refresh(self._slots.rows, now)
        table = self._table_of(candidates)
        return self._fast(table, digest, exclude, now, model_plans, blocked_until, self._reset_field, True)

    def _fast(self, table, session, exclude, now, model_plans, blocked_until, reset_field, placing: bool):
        """pool_table.fast_select over this roster's table; raises the shortage when no account is open."""
        picked = pool_table.fast_select(
            table,
            self._slots.rows,
            strategy=self.strategy,
            pick=self._pick,
            inflight_cap=self.inflight_cap,
            session=session,
            exclude=exclude,
            now=now,
            model_plans=model_plans,
            blocked_until=blocked_until,
            reset_field=reset_field,
            placer=self._placer if placing else None,
        )
        if isinstance(picked, list):
            raise shortage([(block, until) for _, block, until in picked])
        return picked

    def _block_of(
        self,
        candidate: Candidate,
        exclude: Collection[int],
        now: float,
        model_plans: Collection[str] | None,
        blocked_until: Mapping[int, float] | None,
    ) -> str | None:
        """Why a remembered account cannot take this turn (a Block's value), None if it can."""
        block = standing_block(candidate, model_plans)
        if block is not None:
            return block.value
        if blocked_until is not None and candidate.account_id in blocked_until:
            return Block.EXHAUSTED.value
        row = self._slots.snapshot(candidate.slot)
        passing = passing_block(candidate, row, candidate.account_id in exclude, now)
        return None if passing is None else passing[0].value

    def _remembered(self, candidates: Sequence[Candidate], account_id: int) -> Candidate | None:
        """The remembered account among this request's candidates (a key may narrow them to a list)."""
        if isinstance(candidates, tuple):
            return self._table_of(candidates).by_id.get(account_id)
        return next((c for c in candidates if c.account_id == account_id), None)

    def _table_of(self, candidates: Sequence[Candidate]) -> pool_table.PoolTable:
        """The array table of a candidate tuple, kept for the last TABLES tuples: the roster hands out
        a new tuple when it changes, and a key limited to some accounts its own (a list may change in
        place, so it gets a table of its own each time)."""
        tables = self._tables
        table = tables.get(id(candidates))
        if table is not None and table.candidates is candidates:
            tables.move_to_end(id(candidates))
            return table
        table = pool_table.PoolTable(candidates)
        if isinstance(candidates, tuple):
            tables[id(candidates)] = table  # the table holds the tuple, so its id is not reused
            if len(tables) > TABLES:
                tables.popitem(last=False)
        return table

    def _select_from_table(
        self,
        candidates: Sequence[Candidate],
        session: int | None,
        exclude: Collection[int],
        now: float,
        model_plans: Collection[str] | None,
        blocked_until: Mapping[int, float] | None,
    ) -> Selection:
        """Without placement: a request without a session (policies and the reset preference apply) or a
        session by rendezvous."""
        reset_field = None if session is not None else self._reset_field
        table = self._table_of(candidates)
        if self.keep_order and session is None and open_order.usable(self.strategy, exclude, blocked_until):
            slots = self._slots
            changes = slots.changes  # before the rows
            order = pool_table.open_order(table, slots.rows, changes, now, model_plans, reset_field)
            rotation = self._pick if isinstance(self._pick, RoundRobin) else None
            last_id = rotation.last_id if rotation is not None else -1
            found = None
            if order is not None:
                found = order.pick(slots.view, self.strategy, self.inflight_cap, last_id)
            if found is not None:
                if rotation is not None:
                    rotation.took(found[0].account_id)
                return Selection(found[0], found[1] or self.strategy)
        picked = self._fast(table, session, exclude, now, model_plans, blocked_until, reset_field, False)
        if isinstance(picked, pool_table.StrategyPick):
            return Selection(picked.candidate, picked.reason or self.strategy, picked.over_cap)
        if picked.top_block is not None:
            routing = STICKY_MOVED + picked.top_block.value
        elif picked.held_back:
            routing = STICKY_MOVED + tiers.PRESERVE_FLOOR
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
        best_open = open_accounts[0]  # replaced by the first entry's own weight: any beats -1
        best_under: Open | None = None
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
