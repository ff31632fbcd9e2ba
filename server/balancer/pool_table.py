"""Selection over a large pool in a few array operations instead of a Python loop per account, and every
selection the routing policies, the earlier-reset preference or session placement shape. Owns PoolTable
(per-roster arrays of slots, ids, salts and policies) and fast_select; Balancer falls back to its loop.

At 500 accounts the per-account loop cost about 1.5-3.6 µs an account per request. Here the slot rows
are read as one numpy view of the shared memory; accounts in the common state (active, fitting plan, no
cooldown, no spent window, not excluded) are decided by masks, and only the others go through the exact
per-account checks of availability.py. The strategies' orderings are reproduced with the same tie-breaks
(account id last), and the winner is handed to the strategy's own picker, so both paths pick alike.

Policies narrow the open accounts in tiers before anyone picks: preserve accounts at or below their
floor only when nothing else is open; then the in-flight cap; then burn_first accounts before the rest;
then (if set) the accounts whose chosen window resets first. The strongest tier that decided is the
routing reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .availability import (
    COOLDOWN_UNTIL,
    CREDITS_USABLE,
    INFLIGHT,
    PASSING,
    PRIMARY_RESET_AT,
    PRIMARY_USED,
    SECONDARY_RESET_AT,
    SECONDARY_USED,
    Block,
    headroom,
    passing_block,
    standing_block,
)
from .candidates import ACTIVE, Candidate
from .open_order import OpenOrder
from .placement import Placer
from .policies import BURN_FIRST, PRESERVE
from .strategies import INFLIGHT_PENALTY, LEAST_INFLIGHT, ROUND_ROBIN, USAGE_WEIGHTED
from .tiers import BURN, EARLIER_RESET, HEADROOM, PRESERVE_FLOOR, RESET_GRANULARITY_S

# Below this many accounts the plain loop is as fast as the array set-up.
MIN_ACCOUNTS = 24
STRATEGIES = frozenset({USAGE_WEIGHTED, LEAST_INFLIGHT, ROUND_ROBIN})
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


class PoolTable:
    """The arrays of one roster's candidates, built once per roster (the roster is an immutable tuple)."""

    __slots__ = (
        "candidates",
        "slots",
        "ids",
        "salts",
        "active",
        "plans",
        "_plan_masks",
        "position",
        "burn",
        "floors",
        "has_policies",
        "preserve",
        "by_id",
        "everyone",
        "status_until",
        "orders",
    )

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        count = len(candidates)
        self.candidates = candidates
        self.slots = np.fromiter((c.slot for c in candidates), dtype=np.intp, count=count)
        self.ids = np.fromiter((c.account_id for c in candidates), dtype=np.int64, count=count)
        self.salts = np.fromiter((c.rendezvous_salt for c in candidates), dtype=np.uint64, count=count)
        self.active = np.fromiter((c.status == ACTIVE for c in candidates), dtype=bool, count=count)
        self.plans = [c.plan_type for c in candidates]
        self._plan_masks: dict[frozenset[str], np.ndarray] = {}
        self.position = {c.account_id: i for i, c in enumerate(candidates)}
        self.by_id = {c.account_id: c for c in candidates}
        self.everyone = np.arange(count)  # every position, when all are open (read only)
        self.everyone.flags.writeable = False
        self.burn = np.fromiter((c.policy == BURN_FIRST for c in candidates), dtype=bool, count=count)
        # -1: never held back; a preserve account is held back at or below its floor.
        self.floors = np.fromiter(
            (c.reserve_percent if c.policy == PRESERVE else -1.0 for c in candidates),
            dtype=float,
            count=count,
        )
        self.preserve = np.flatnonzero(self.floors >= 0)
        self.has_policies = bool(self.burn.any() or self.preserve.size)
        self.status_until = np.fromiter((c.status_until for c in candidates), dtype=float, count=count)
        # Per model plans and reset preference (open_order).
        self.orders: dict[tuple[frozenset[str] | None, int | None], OpenOrder] = {}

    def at(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """values[positions] for one value per account; the values themselves when positions are all."""
        return values if positions is self.everyone else values.take(positions)

    def plan_mask(self, model_plans: Collection[str]) -> np.ndarray:
        key = frozenset(model_plans)
        mask = self._plan_masks.get(key)
        if mask is None:
            mask = np.fromiter((p in key for p in self.plans), dtype=bool, count=len(self.plans))
            if len(self._plan_masks) < 64:
                self._plan_masks[key] = mask
        return mask


@dataclass(frozen=True, slots=True)
class StickyPick:
    """The session's account, and what Balancer needs to say why it is not the first choice."""

    candidate: Candidate
    over_cap: bool
    top_block: Block | None  # the best-ranked passing block above the chosen account
    moved_at_capacity: bool  # the best-ranked open account was at the in-flight cap
    held_back: bool = False  # the best-ranked open account is a preserve account at its floor


@dataclass(frozen=True, slots=True)
class StrategyPick:
    """The account for a request without a session, or a session placed anew; `reason` is the policy
    tier that decided it (None: the strategy alone)."""

    candidate: Candidate
    over_cap: bool
    reason: str | None = None


def weights(session: int, salts: np.ndarray) -> np.ndarray:
    """stickiness.rendezvous_weight for many accounts at once (uint64 arithmetic wraps like `& _MASK`)."""
    value = salts ^ np.uint64(session)
    value = (value ^ (value >> _S30)) * _M1
    value = (value ^ (value >> _S27)) * _M2
    return value ^ (value >> _S31)


def fast_select(
    table: PoolTable,
    rows_all: np.ndarray,
    *,
    strategy: str,
    pick,
    inflight_cap: int,
    session: int | None,
    exclude: Collection[int],
    now: float,
    model_plans: Collection[str] | None,
    blocked_until: Mapping[int, float] | None,
    reset_field: int | None = None,
    placer: Placer | None = None,
):
    """A StickyPick (a session by rendezvous) or a StrategyPick (no session, or `placer` given: a session
    placed by headroom), or the blocked list when no account is open (the caller raises the shortage).
    Without policies, reset preference or placer: the same answers as Balancer's loop."""
    rows = rows_all.take(table.slots, axis=0)  # one consistent copy (take: faster than rows_all[slots])
    open_positions, blocked = _open_positions(table, rows, exclude, now, model_plans, blocked_until)
    if not open_positions.size:
        return blocked
    # Headroom of every account, computed once when the preserve tier needs it (the strategy reuses it).
    room = _headrooms(rows, now) if table.preserve.size else None
    held = _held_back(table, room, open_positions)
    standby = held is not None and bool(held.all())  # nothing but reserves is open: they serve
    if held is not None and not standby:
        reserved, open_positions = open_positions[held], open_positions[~held]
    else:
        reserved = open_positions[:0]
    under = table.at(rows[:, INFLIGHT], open_positions) < inflight_cap
    if session is not None and placer is None:
        return _sticky(table, session, open_positions, under, blocked, reserved)
    over_cap = not under.any()
    pool = open_positions if over_cap or under.all() else open_positions[under]
    reason = PRESERVE_FLOOR if standby else None
    if placer is not None:
        spare = placer.spare_of(table, rows, pool, now)
        fits = placer.fits(spare)
        if not fits.any():  # nothing can carry a long one: the most room, then the lowest id
            chosen = pool[np.flatnonzero(spare == spare.max())[0]]
            placer.placed(table, chosen)
            return StrategyPick(candidates_at(table, chosen), over_cap, reason or HEADROOM)
        pool = pool[fits]
    pool, reason = _preferred(table, rows, pool, reason, reset_field, now)
    if placer is not None:
        assert session is not None, "the placer places sessions only"
        chosen = pool[int(np.argmax(weights(session, table.salts[pool])))]
        placer.placed(table, chosen)
        return StrategyPick(candidates_at(table, chosen), over_cap, reason or HEADROOM)
    candidates = table.candidates
    if strategy == ROUND_ROBIN:
        # The picker keeps its position: hand it the two entries its rule can choose between.
        positions = _round_robin_pair(table, pool, pick)
    else:
        positions = [_strategy_winner(table, rows, pool, strategy, now, room)]
    entries = [
        (candidates[i], rows[i, INFLIGHT].item(), headroom(tuple(rows[i].tolist()), now)) for i in positions
    ]
    return StrategyPick(pick(entries)[0], over_cap, reason)


def open_order(
    table: PoolTable,
    rows_all: np.ndarray,
    changes: int,
    now: float,
    model_plans: Collection[str] | None,
    reset_field: int | None,
) -> OpenOrder | None:
    """The table's open accounts in the routing's order, kept while it holds (None: no account is
    open). `changes`: the slots' change counter, read before `rows_all`."""
    key = (None if model_plans is None else frozenset(model_plans), reset_field)
    order = table.orders.get(key)
    if order is not None and order.changes == changes and now < order.valid_until:
        return order
    rows = rows_all.take(table.slots, axis=0)
    open_positions, _ = _open_positions(table, rows, (), now, model_plans, None)
    if not open_positions.size:
        return None
    room = _headrooms(rows, now)
    order = OpenOrder.build(table, rows, open_positions, room, changes, now, reset_field)
    if len(table.orders) >= 16:  # model plan sets are few; a flood of odd ones must not grow it
        table.orders.clear()
    table.orders[key] = order
    return order


def candidates_at(table: PoolTable, position) -> Candidate:
    return table.candidates[int(position)]


def _open_positions(
    table: PoolTable,
    rows: np.ndarray,
    exclude: Collection[int],
    now: float,
    model_plans: Collection[str] | None,
    blocked_until: Mapping[int, float] | None,
) -> tuple[np.ndarray, list[tuple[Candidate, Block, float]]]:
    """Positions of the accounts that can take the request, and why each other one cannot."""
    cooldown, primary, secondary = rows[:, COOLDOWN_UNTIL], rows[:, PRIMARY_USED], rows[:, SECONDARY_USED]
    simple = table.active & (cooldown <= now) & (primary < 100.0) & (secondary < 100.0)
    if model_plans is not None:
        simple &= table.plan_mask(model_plans)
    position = table.position.get  # None: not among this table's accounts
    special = {i for i in map(position, exclude) if i is not None}
    if blocked_until:
        special.update(i for i in map(position, blocked_until) if i is not None)
    if not special and simple.all():  # the usual case: every account is open
        return table.everyone, []
    is_open = simple.copy()
    blocked: list[tuple[Candidate, Block, float]] = []
    candidates = table.candidates
    slow = np.flatnonzero(~simple).tolist()
    if special:
        slow = sorted(set(slow) | special)
    for i in slow:  # the exact per-account checks of Balancer.select, for the few that need them
        candidate = candidates[i]
        is_open[i] = False
        if candidate.status != ACTIVE or not (model_plans is None or candidate.plan_type in model_plans):
            block = standing_block(candidate, model_plans)
            if block is not None:
                blocked.append((candidate, block, 0.0))
                continue
        if blocked_until is not None and candidate.account_id in blocked_until:
            blocked.append((candidate, Block.EXHAUSTED, blocked_until[candidate.account_id]))
            continue
        row = tuple(rows[i].tolist())
        passing = passing_block(candidate, row, candidate.account_id in exclude, now)
        if passing is None:
            is_open[i] = True
        else:
            blocked.append((candidate, passing[0], passing[1]))
    return np.flatnonzero(is_open), blocked


def _held_back(table: PoolTable, room: np.ndarray | None, positions: np.ndarray) -> np.ndarray | None:
    """Which of the open accounts are preserve accounts at or below their floor (None: none is).
    `room`: the headroom of every account of the table (None when the table has no preserve account)."""
    if room is None:
        return None
    held = (room <= table.floors)[positions]  # floors are -1 for the others: never held
    return held if held.any() else None


def _preferred(
    table: PoolTable,
    rows: np.ndarray,
    pool: np.ndarray,
    reason: str | None,
    reset_field: int | None,
    now: float,
) -> tuple[np.ndarray, str | None]:
    """burn_first accounts before the others, then the earliest reset of the chosen window (if set)."""
    if table.has_policies:
        burn = table.burn[pool]
        if burn.any():
            pool, reason = pool[burn], reason or BURN
    if reset_field is not None and len(pool) > 1:
        resets = rows[pool, reset_field]
        moments = np.where(resets > now, np.floor(resets / RESET_GRANULARITY_S), np.inf)
        first = moments[moments.argmin()]  # never nan: the minimum, at a fraction of min()'s cost
        if np.isfinite(first) and (moments > first).any():
            pool, reason = pool[moments == first], reason or EARLIER_RESET
    return pool, reason


def _headrooms(rows: np.ndarray, now: float) -> np.ndarray:
    """availability.headroom for many rows at once."""
    reset = rows[:, PRIMARY_RESET_AT]
    used = np.where((reset == 0.0) | (reset > now), rows[:, PRIMARY_USED], 0.0)
    reset = rows[:, SECONDARY_RESET_AT]
    secondary = np.where((reset == 0.0) | (reset > now), rows[:, SECONDARY_USED], 0.0)
    lifted = (secondary >= 100.0) & (rows[:, CREDITS_USABLE] != 0.0)
    used = np.where((secondary > used) & ~lifted, secondary, used)
    return 100.0 - used


def _strategy_winner(
    table: PoolTable, rows: np.ndarray, pool: np.ndarray, strategy: str, now: float, rooms: np.ndarray | None
) -> int:
    inflight = table.at(rows[:, INFLIGHT], pool)
    # Headroom of the whole table then picked (elementwise, so the same values): cheaper than rows[pool].
    room = table.at(_headrooms(rows, now) if rooms is None else rooms, pool)
    if strategy == USAGE_WEIGHTED:
        first, then = inflight * INFLIGHT_PENALTY - room, inflight
    else:  # least_inflight
        first, then = inflight, -room
    # The lexicographic minimum of (first, then, account id), key by key: each pass keeps only the ties
    # of the one before (x[x.argmin()] is the minimum at a fraction of the cost of x.min()).
    ties = (first == first[first.argmin()]).nonzero()[0]
    if len(ties) > 1:
        then = then.take(ties)
        ties = ties[then == then[then.argmin()]]
        if len(ties) > 1:
            ties = ties[[table.ids.take(pool.take(ties)).argmin()]]  # ids are unique
    return int(pool[ties[0]])


def _round_robin_pair(table: PoolTable, pool: np.ndarray, pick) -> list[int]:
    ids = table.ids[pool]
    last = pick.last_id
    pair = [int(pool[np.argmin(ids)])]
    after = ids > last
    if after.any():
        pair.append(int(pool[after][np.argmin(ids[after])]))
    return pair


def _sticky(
    table: PoolTable,
    session: int,
    open_positions: np.ndarray,
    under: np.ndarray,
    blocked: list[tuple[Candidate, Block, float]],
    reserved: np.ndarray,
):
    open_weights = weights(session, table.at(table.salts, open_positions))
    top = int(open_weights.argmax())
    best_open, best_open_weight = int(open_positions[top]), int(open_weights[top])
    chosen, over_cap = best_open, True
    if under.any():
        under_positions = open_positions[under]
        chosen, over_cap = int(under_positions[int(np.argmax(open_weights[under]))]), False
    top_block, top_weight = None, best_open_weight
    passing = [(c, b) for c, b, _ in blocked if b in PASSING]
    if passing:
        blocked_weights = weights(session, np.array([c.rendezvous_salt for c, _ in passing], dtype=np.uint64))
        for (_, block), weight in zip(passing, blocked_weights.tolist(), strict=True):
            if weight > top_weight:
                top_block, top_weight = block, weight
    held_back = bool(reserved.size) and int(weights(session, table.salts[reserved]).max()) > top_weight
    return StickyPick(table.candidates[chosen], over_cap, top_block, chosen != best_open, held_back)
