"""A day of synthetic traffic through the real balancer, without network or clock: a pool of five accounts
with different plans, windows and resets; seeded conversations of varied length. For the routing test and
scripts/simulate_routing.py, which prints the table docs/routing.md shows.

The upstream is modelled by the slots alone: each turn costs units of the account's windows (its plan's
size), written as used percents the way the proxy writes the windows answers report; a spent window
blocks the account until its reset, when the window's unused share is counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from server.balancer.candidates import Candidate
from server.balancer.selection import RENDEZVOUS_PLACEMENT, Balancer
from server.balancer.shortage import NoAccountAvailable
from server.balancer.slots import AccountSlots, Field, SharedPrimitives

HOUR = 3600.0
DAY = 24 * HOUR
FIVE_HOURS = 5 * HOUR
WEEK = 7 * DAY
START = 1_767_225_600.0  # a fixed epoch: 2026-01-01 00:00 UTC


@dataclass(frozen=True, slots=True)
class Plan:
    """One account: window sizes in units, where each window stands at the start, and its resets."""

    name: str
    five_hour_units: float
    weekly_units: float
    five_hour_used: float  # percent at START
    five_hour_reset_in: float  # seconds after START
    weekly_used: float
    weekly_reset_in: float


POOL = (
    Plan("pro", 1000, 10000, 30, 0.5 * HOUR, 35, 3.0 * DAY),
    Plan("plus-a", 150, 1500, 50, 1.5 * HOUR, 40, 5.0 * DAY),
    Plan("plus-b", 150, 1500, 10, 3.0 * HOUR, 80, 10 * HOUR),  # weekly runs out soon, resets tonight
    Plan("team", 250, 2500, 70, 4.0 * HOUR, 20, 4.0 * DAY),
    Plan("plus-c", 150, 1500, 0, 2.5 * HOUR, 60, 20 * HOUR),
)


@dataclass(frozen=True, slots=True)
class Turn:
    at: float
    conversation: int
    session_key: str | None  # None: a one-off request without a session
    cost: float  # units


def traffic(seed: int = 19, conversations: int = 360) -> list[Turn]:
    """Conversations arriving over a day (busier in working hours), 1 to 80 turns each, turns 20-120 s
    apart and dearer as their context grows; one in seven is a single request without a session key."""
    rng = random.Random(seed)
    turns: list[Turn] = []
    for number in range(conversations):
        start = _arrival(rng)
        kind = rng.random()
        if kind < 1 / 7:
            turns.append(Turn(start, number, None, rng.uniform(0.5, 2.0)))
            continue
        if kind < 0.6:
            length = rng.randint(1, 5)
        elif kind < 0.9:
            length = rng.randint(6, 20)
        else:
            length = rng.randint(30, 80)
        base = rng.uniform(0.4, 1.6)
        at = start
        for index in range(length):
            turns.append(Turn(at, number, f"conversation-{seed}-{number}", base * (1 + index / 25)))
            at += rng.uniform(20, 120)
    turns.sort(key=lambda t: (t.at, t.conversation))
    return turns


def _arrival(rng: random.Random) -> float:
    while True:  # thinned: twice as busy from 08:00 to 20:00
        at = rng.uniform(0, DAY)
        if 8 * HOUR <= at < 20 * HOUR or rng.random() < 0.5:
            return START + at


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    strategy: str = "usage_weighted"
    sticky: bool = True
    placement: str = "headroom"
    prefer_earlier_reset: str = "off"
    policies: tuple[tuple[str, str, float], ...] = ()  # (plan name, policy, reserve percent)


TODAY = (
    Config("usage_weighted, rendezvous", placement=RENDEZVOUS_PLACEMENT),
    Config("round_robin, rendezvous", strategy="round_robin", placement=RENDEZVOUS_PLACEMENT),
    Config("least_inflight, rendezvous", strategy="least_inflight", placement=RENDEZVOUS_PLACEMENT),
    Config("usage_weighted, not sticky", sticky=False),
)
HEADROOM = (
    Config("usage_weighted, headroom"),
    Config("round_robin, headroom", strategy="round_robin"),
    Config("headroom + earlier reset (5h)", prefer_earlier_reset="5h"),
    Config("headroom + earlier reset (weekly)", prefer_earlier_reset="weekly"),
    Config(
        "headroom + burn_first plus-b, preserve pro 20%",
        policies=(("plus-b", "burn_first", 0.0), ("pro", "preserve", 20.0)),
    ),
)
CONFIGS = TODAY + HEADROOM


@dataclass
class Outcome:
    config: str
    turns: int = 0
    refused: int = 0
    moves: int = 0
    sessions_moved: int = 0
    unused_5h: float = 0.0  # units of 5 h windows that reset unused
    capacity_5h: float = 0.0  # units of 5 h windows that reset
    unused_weekly: float = 0.0
    capacity_weekly: float = 0.0
    routing: dict[str, int] = field(default_factory=dict)

    @property
    def unused_5h_percent(self) -> float:
        return 100.0 * self.unused_5h / self.capacity_5h if self.capacity_5h else 0.0

    @property
    def unused_weekly_percent(self) -> float:
        return 100.0 * self.unused_weekly / self.capacity_weekly if self.capacity_weekly else 0.0


class _Account:
    def __init__(self, plan: Plan, slot: int, slots: AccountSlots) -> None:
        self.plan, self.slot, self._slots = plan, slot, slots
        self.five_hour = plan.five_hour_units * plan.five_hour_used / 100
        self.weekly = plan.weekly_units * plan.weekly_used / 100
        self.five_hour_reset = START + plan.five_hour_reset_in
        self.weekly_reset = START + plan.weekly_reset_in
        self._write()

    def reset_due(self, now: float, outcome: Outcome) -> None:
        while self.five_hour_reset <= now:
            outcome.unused_5h += max(0.0, self.plan.five_hour_units - self.five_hour)
            outcome.capacity_5h += self.plan.five_hour_units
            self.five_hour, self.five_hour_reset = 0.0, self.five_hour_reset + FIVE_HOURS
            self._write()
        while self.weekly_reset <= now:
            outcome.unused_weekly += max(0.0, self.plan.weekly_units - self.weekly)
            outcome.capacity_weekly += self.plan.weekly_units
            self.weekly, self.weekly_reset = 0.0, self.weekly_reset + WEEK
            self._write()

    def spend(self, units: float) -> None:
        self.five_hour += units
        self.weekly += units
        self._write()

    def _write(self) -> None:
        """What the proxy keeps in the slot from each answer's rate-limit headers."""
        slots, slot = self._slots, self.slot
        slots.set(slot, Field.PRIMARY_USED, min(100.0, 100.0 * self.five_hour / self.plan.five_hour_units))
        slots.set(slot, Field.PRIMARY_RESET_AT, self.five_hour_reset)
        slots.set(slot, Field.SECONDARY_USED, min(100.0, 100.0 * self.weekly / self.plan.weekly_units))
        slots.set(slot, Field.SECONDARY_RESET_AT, self.weekly_reset)


def run(config: Config, turns: list[Turn]) -> Outcome:
    slots = AccountSlots(SharedPrimitives.create(capacity=len(POOL)))
    accounts = [_Account(plan, slot, slots) for slot, plan in enumerate(POOL)]
    chosen = {name: (policy, reserve) for name, policy, reserve in config.policies}
    candidates = tuple(
        Candidate(
            account_id=slot + 1,
            slot=slot,
            status="active",
            plan_type="plus",
            policy=chosen.get(plan.name, ("normal", 0.0))[0],
            reserve_percent=chosen.get(plan.name, ("normal", 0.0))[1],
        )
        for slot, plan in enumerate(POOL)
    )
    balancer = Balancer(slots, config.strategy, inflight_cap=4)
    balancer.configure(
        config.strategy,
        config.sticky,
        prefer_earlier_reset=config.prefer_earlier_reset,
        placement=config.placement,
    )
    outcome = Outcome(config.name)
    home: dict[int, int] = {}
    moved: set[int] = set()
    for turn in turns:
        for account in accounts:
            account.reset_due(turn.at, outcome)
        outcome.turns += 1
        try:
            selection = balancer.select(candidates, session_key=turn.session_key, now=turn.at)
        except NoAccountAvailable:
            outcome.refused += 1
            continue
        reason = selection.routing.split(":")[0]
        outcome.routing[reason] = outcome.routing.get(reason, 0) + 1
        candidate = selection.candidate
        if turn.session_key is not None:
            before = home.get(turn.conversation)
            if before is not None and before != candidate.slot:
                outcome.moves += 1
                moved.add(turn.conversation)
            home[turn.conversation] = candidate.slot
        balancer.acquire(candidate)
        accounts[candidate.slot].spend(turn.cost)
        balancer.release(candidate)
    for account in accounts:  # what the rest of the day leaves at the next resets is not counted
        account.reset_due(START + DAY, outcome)
    outcome.sessions_moved = len(moved)
    return outcome


def simulate(seed: int = 19, configs: tuple[Config, ...] = CONFIGS) -> list[Outcome]:
    turns = traffic(seed)
    return [run(config, turns) for config in configs]


def table(outcomes: list[Outcome]) -> str:
    """The table docs/routing.md shows (Markdown)."""
    lines = [
        "| strategy, placement, policies | turns | refused | sessions moved | moves | 5h unused at resets"
        " | weekly unused at resets |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.config} | {o.turns} | {o.refused} | {o.sessions_moved} | {o.moves} |"
            f" {o.unused_5h_percent:.1f} % | {o.unused_weekly_percent:.1f} % |"
        )
    return "\n".join(lines)
