"""Large pools are decided with arrays (server/balancer/pool_table.py): for any pool state, every strategy,
with and without a session key, they pick the same account for the same reason as the per-account loop."""

from __future__ import annotations

import random

import pytest

from server.balancer.candidates import STATUSES, Candidate
from server.balancer.selection import RENDEZVOUS_PLACEMENT, Balancer
from server.balancer.shortage import NoAccountAvailable
from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.balancer.strategies import STRATEGIES

NOW = 1_750_000_000.0
PLANS = ("plus", "pro", "team")


def _randomise(rng: random.Random, slots: AccountSlots, count: int) -> tuple[Candidate, ...]:
    candidates = []
    for slot in range(count):
        status = "active" if rng.random() < 0.7 else rng.choice(sorted(STATUSES))
        until = rng.choice((0.0, NOW - 10, NOW + 60))
        candidates.append(
            Candidate(1000 + rng.randrange(10**6) * 64 + slot, slot, status, rng.choice(PLANS), until)
        )
        slots.reset(slot)
        busy = rng.random()
        slots.set(slot, Field.INFLIGHT, float(rng.choice((0, 1, 2, 3, 4, 5))) if busy < 0.8 else 4.0)
        slots.set(slot, Field.COOLDOWN_UNTIL, NOW + 30 if rng.random() < 0.1 else rng.choice((0.0, NOW - 5)))
        for used, reset in (
            (Field.PRIMARY_USED, Field.PRIMARY_RESET_AT),
            (Field.SECONDARY_USED, Field.SECONDARY_RESET_AT),
        ):
            slots.set(slot, used, rng.choice((0.0, 12.0, 55.0, 55.0, 99.0, 100.0, 100.0)))
            slots.set(slot, reset, rng.choice((0.0, NOW - 1, NOW + 3600)))
        slots.set(slot, Field.CREDITS_USABLE, float(rng.random() < 0.2))
    rng.shuffle(candidates)
    return tuple(candidates)


def _outcome(balancer: Balancer, candidates, now: float = NOW, **kwargs):
    try:
        chosen = balancer.select(candidates, now=now, **kwargs)
    except NoAccountAvailable as exc:
        return ("none", exc.reason, exc.retry_at)
    return (chosen.candidate.account_id, chosen.routing, chosen.over_cap)


def _loop_and_table(strategy: str) -> tuple[AccountSlots, Balancer, Balancer]:
    """Two balancers over the same 64 slots: one held to the per-account loop, one taking the kept
    order and the array path for any pool size."""
    slots = AccountSlots(SharedPrimitives.create(capacity=64))
    loop = Balancer(slots, strategy, inflight_cap=4)
    loop.table_threshold = loop.order_threshold = 1 << 30
    table = Balancer(slots, strategy, inflight_cap=4)
    table.table_threshold = 1
    return slots, loop, table


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("sticky", [False, True])
def test_the_array_path_picks_what_the_loop_picks(strategy, sticky):
    rng = random.Random(f"{strategy}-{sticky}")
    slots, loop, table = _loop_and_table(strategy)
    for balancer in (loop, table):  # the stateless ranking both paths implement
        balancer.configure(strategy, True, placement=RENDEZVOUS_PLACEMENT)
    outcomes = set()
    for round_ in range(400):
        candidates = _randomise(rng, slots, rng.choice((1, 2, 5, 30, 64)))
        ids = [c.account_id for c in candidates]
        kwargs = {
            "session_key": f"conversation-{round_}" if sticky else None,
            "exclude": set(rng.sample(ids, k=min(len(ids), rng.choice((0, 0, 1, 3))))),
            "model_plans": rng.choice((None, None, {"pro", "team"}, {"enterprise"})),
            "blocked_until": rng.choice((None, {rng.choice(ids): NOW + 99})),
        }
        for _ in range(3):  # round robin moves on: the next picks must agree too
            expected = _outcome(loop, candidates, **kwargs)
            assert _outcome(table, candidates, **kwargs) == expected, (round_, kwargs)
            outcomes.add(expected[1] if expected[0] != "none" else expected[1])
    # The states covered the interesting answers, not only the common one.
    assert len(outcomes) >= 3, outcomes


def test_a_roster_that_changes_is_read_afresh():
    slots = AccountSlots(SharedPrimitives.create(capacity=64))
    balancer = Balancer(slots, "usage_weighted", inflight_cap=4)
    balancer.table_threshold = 1
    first = tuple(Candidate(i + 1, i, "active", "plus") for i in range(40))
    assert balancer.select(first, session_key=None, now=NOW).candidate.account_id == 1
    second = tuple(Candidate(i + 1, i, "paused" if i == 0 else "active", "plus") for i in range(40))
    assert balancer.select(second, session_key=None, now=NOW).candidate.account_id == 2
    slots.set(5, Field.PRIMARY_USED, 0.0)
    for slot in range(40):
        if slot != 5:
            slots.set(slot, Field.PRIMARY_USED, 50.0)
    assert balancer.select(second, session_key=None, now=NOW).candidate.account_id == 6


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_kept_order_answers_what_the_loop_answers_as_load_moves_and_time_passes(strategy):
    """A request without a session walks the open accounts in headroom order (open_order.py), kept
    while only in-flight counts move; a cooldown ending or a window resetting makes it read afresh."""
    rng = random.Random(f"order-{strategy}")
    slots, loop, table = _loop_and_table(strategy)
    walks = 0
    for round_ in range(40):
        candidates = _randomise(rng, slots, 64)
        for slot in range(64):  # windows with several resets ahead, so time passing changes them
            if slots.get(slot, Field.PRIMARY_RESET_AT) > NOW:
                slots.set(slot, Field.PRIMARY_RESET_AT, NOW + rng.choice((20.0, 40.0, 3600.0)))
        plans = rng.choice((None, {"pro", "team"}))
        now = NOW
        for _ in range(30):
            for slot in rng.sample(range(64), 8):  # requests start and end: no change of the pool
                slots.set(slot, Field.INFLIGHT, float(rng.choice((0, 0, 1, 2, 3, 4, 6))))
            if rng.random() < 0.2:
                now += rng.choice((10.0, 25.0))  # past cooldowns (NOW+30) and resets (NOW+20, +40)
            expected = _outcome(loop, candidates, session_key=None, now=now, model_plans=plans)
            assert _outcome(table, candidates, session_key=None, now=now, model_plans=plans) == expected
            kept = table._table_of(candidates).orders.get((None if plans is None else frozenset(plans), None))
            walks += kept is not None and kept.changes == slots.changes
        assert round_ < 5 or walks, "the order was never kept"
    assert walks > 40 * 30 // 2


def test_the_kept_order_is_read_afresh_when_a_window_or_cooldown_changes():
    slots = AccountSlots(SharedPrimitives.create(capacity=64))
    balancer = Balancer(slots, "usage_weighted", inflight_cap=4)
    candidates = tuple(Candidate(i + 1, i, "active", "plus") for i in range(40))
    for slot in range(40):
        slots.set(slot, Field.PRIMARY_USED, 10.0 + slot)
        slots.set(slot, Field.PRIMARY_RESET_AT, NOW + 3600)
    assert balancer.select(candidates, session_key=None, now=NOW).candidate.account_id == 1
    slots.set(0, Field.INFLIGHT, 1.0)  # 5 % of headroom for a request in flight: still ahead of 2's
    assert balancer.select(candidates, session_key=None, now=NOW).candidate.account_id == 2
    slots.set(1, Field.INFLIGHT, 4.0)  # at the cap
    assert balancer.select(candidates, session_key=None, now=NOW).candidate.account_id == 3
    slots.set(39, Field.PRIMARY_USED, 0.0)  # a poll found the last account fresh
    assert balancer.select(candidates, session_key=None, now=NOW).candidate.account_id == 40
    slots.set(39, Field.COOLDOWN_UNTIL, NOW + 30)  # then it hit a burst limit
    assert balancer.select(candidates, session_key=None, now=NOW).candidate.account_id == 3
    assert balancer.select(candidates, session_key=None, now=NOW + 31).candidate.account_id == 40
    slots.set(39, Field.PRIMARY_USED, 95.0)
    slots.set(39, Field.PRIMARY_RESET_AT, NOW + 60)
    assert balancer.select(candidates, session_key=None, now=NOW + 31).candidate.account_id == 3
    assert balancer.select(candidates, session_key=None, now=NOW + 61).candidate.account_id == 40  # reset
    slots.set(39, Field.INFLIGHT, 2.0)  # 100 % less 10 for two in flight scores what 3's 90 % scores...
    slots.set(2, Field.PRIMARY_USED, 10.0)
    assert balancer.select(candidates, session_key=None, now=NOW + 61).candidate.account_id == 3  # ...idle


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_kept_order_follows_policies_and_the_reset_preference_as_the_array_path_does(strategy):
    """burn_first and preserve tiers and the earlier-reset preference, walked from the kept order, pick
    the account the array path picks and give the same reason, as load moves and time passes."""
    rng = random.Random(f"tiers-{strategy}")
    slots = AccountSlots(SharedPrimitives.create(capacity=64))
    arrays, walk = Balancer(slots, strategy, inflight_cap=4), Balancer(slots, strategy, inflight_cap=4)
    arrays.keep_order = False
    reasons = set()
    for round_ in range(60):
        plain = _randomise(rng, slots, rng.choice((3, 30, 64)))
        standby = rng.random() < 0.15  # every account a reserve: they serve, held back by their floor
        candidates = tuple(
            Candidate(
                c.account_id,
                c.slot,
                c.status,
                c.plan_type,
                c.status_until,
                policy="preserve" if standby else rng.choice(("normal", "normal", "burn_first", "preserve")),
                reserve_percent=100.0 if standby else rng.choice((0.0, 20.0, 50.0, 100.0)),
            )
            for c in plain
        )
        for slot in range(len(candidates)):  # resets spread over the next hours, some within 5 minutes
            for reset in (Field.PRIMARY_RESET_AT, Field.SECONDARY_RESET_AT):
                if slots.get(slot, reset) > NOW:
                    slots.set(slot, reset, NOW + rng.choice((20.0, 100.0, 250.0, 3600.0, 7200.0)))
        preference = rng.choice(("off", "5h", "weekly"))
        for balancer in (arrays, walk):
            balancer.configure(strategy, True, prefer_earlier_reset=preference)
        plans = rng.choice((None, {"pro", "team"}))
        now = NOW
        for _ in range(20):
            for slot in rng.sample(range(len(candidates)), min(8, len(candidates))):
                slots.set(slot, Field.INFLIGHT, float(rng.choice((0, 0, 1, 2, 3, 4, 6))))
            if rng.random() < 0.2:
                now += rng.choice((10.0, 25.0, 90.0))
            expected = _outcome(arrays, candidates, now, session_key=None, model_plans=plans)
            assert _outcome(walk, candidates, now, session_key=None, model_plans=plans) == expected, round_
            reasons.add(expected[1])
    assert {"burn_first", "preserve_floor", "earlier_reset", strategy} <= reasons, reasons
