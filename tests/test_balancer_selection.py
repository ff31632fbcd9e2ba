"""Which account a request without a session key gets, under each strategy, the in-flight cap and filters."""

from __future__ import annotations

import pytest

from server.balancer.candidates import Candidate
from server.balancer.selection import Balancer
from server.balancer.slots import AccountSlots, Field, SharedPrimitives

NOW = 1_750_000_000.0


@pytest.fixture
def slots() -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=16))


def account(slot: int, status: str = "active", plan: str = "plus", until: float = 0.0) -> Candidate:
    return Candidate(account_id=100 + slot, slot=slot, status=status, plan_type=plan, status_until=until)


def use(slots: AccountSlots, slot: int, primary: float, secondary: float = 0.0) -> None:
    slots.set(slot, Field.PRIMARY_USED, primary)
    slots.set(slot, Field.PRIMARY_RESET_AT, NOW + 3600)
    slots.set(slot, Field.SECONDARY_USED, secondary)
    slots.set(slot, Field.SECONDARY_RESET_AT, NOW + 86400)


def pick(balancer: Balancer, candidates, **kwargs) -> int:
    return balancer.select(candidates, session_key=None, now=NOW, **kwargs).candidate.slot


def test_usage_weighted_prefers_the_most_headroom(slots):
    pool = [account(0), account(1), account(2)]
    use(slots, 0, 80)
    use(slots, 1, 20)
    use(slots, 2, 50)
    selection = Balancer(slots, "usage_weighted", 4).select(pool, session_key=None, now=NOW)
    assert (selection.candidate.slot, selection.routing, selection.over_cap) == (1, "usage_weighted", False)


def test_usage_weighted_reads_the_tighter_window(slots):
    pool = [account(0), account(1)]
    use(slots, 0, 10, secondary=95)
    use(slots, 1, 40, secondary=40)
    assert pick(Balancer(slots, "usage_weighted", 4), pool) == 1


def test_a_window_past_its_reset_counts_as_fresh(slots):
    pool = [account(0), account(1)]
    use(slots, 0, 90)
    slots.set(0, Field.PRIMARY_RESET_AT, NOW - 1)
    use(slots, 1, 30)
    assert pick(Balancer(slots, "usage_weighted", 4), pool) == 0


def test_usage_weighted_spreads_a_burst_by_in_flight_load(slots):
    pool = [account(0), account(1)]
    use(slots, 0, 10)
    use(slots, 1, 20)
    balancer = Balancer(slots, "usage_weighted", 8)
    chosen = []
    for _ in range(6):
        selection = balancer.select(pool, session_key=None, now=NOW)
        balancer.acquire(selection.candidate)
        chosen.append(selection.candidate.slot)
    # 10 points of headroom are worth two requests in flight; past that the load alternates
    assert chosen == [0, 0, 1, 0, 1, 0]


def test_least_inflight_prefers_the_idlest_then_headroom(slots):
    pool = [account(0), account(1), account(2)]
    slots.set(0, Field.INFLIGHT, 2)
    slots.set(1, Field.INFLIGHT, 1)
    slots.set(2, Field.INFLIGHT, 1)
    use(slots, 1, 60)
    use(slots, 2, 30)
    balancer = Balancer(slots, "least_inflight", 4)
    assert pick(balancer, pool) == 2
    slots.set(2, Field.INFLIGHT, 3)
    assert pick(balancer, pool) == 1


def test_round_robin_cycles_through_accounts_in_order(slots):
    pool = [account(2), account(0), account(1)]
    balancer = Balancer(slots, "round_robin", 4)
    assert [pick(balancer, pool) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_skips_an_account_that_drops_out_and_keeps_the_cycle(slots):
    balancer = Balancer(slots, "round_robin", 4)
    pool = [account(0), account(1), account(2), account(3)]
    assert [pick(balancer, pool) for _ in range(2)] == [0, 1]
    slots.set(2, Field.COOLDOWN_UNTIL, NOW + 5)
    assert [pick(balancer, pool) for _ in range(3)] == [3, 0, 1]


def test_round_robin_workers_each_keep_their_own_cycle(slots):
    pool = [account(0), account(1)]
    first, second = Balancer(slots, "round_robin", 4), Balancer(slots, "round_robin", 4)
    assert [pick(first, pool), pick(second, pool), pick(first, pool)] == [0, 0, 1]


def test_unknown_strategy_is_refused(slots):
    with pytest.raises(ValueError, match="routing strategy"):
        Balancer(slots, "random", 4)


@pytest.mark.parametrize("strategy", ["usage_weighted", "round_robin", "least_inflight"])
def test_accounts_under_the_in_flight_cap_are_preferred(slots, strategy):
    pool = [account(0), account(1)]
    use(slots, 0, 0)
    use(slots, 1, 90)
    slots.set(0, Field.INFLIGHT, 2)
    selection = Balancer(slots, strategy, 2).select(pool, session_key=None, now=NOW)
    assert (selection.candidate.slot, selection.over_cap) == (1, False)


@pytest.mark.parametrize("strategy", ["usage_weighted", "least_inflight"])
def test_when_every_account_is_at_the_cap_the_best_is_returned_over_cap(slots, strategy):
    pool = [account(0), account(1)]
    use(slots, 0, 50)
    use(slots, 1, 10)
    slots.set(0, Field.INFLIGHT, 2)
    slots.set(1, Field.INFLIGHT, 2)
    selection = Balancer(slots, strategy, 2).select(pool, session_key=None, now=NOW)
    assert (selection.candidate.slot, selection.over_cap) == (1, True)


def test_excluded_accounts_are_skipped(slots):
    pool = [account(0), account(1), account(2)]
    use(slots, 0, 0)
    use(slots, 1, 10)
    use(slots, 2, 20)
    balancer = Balancer(slots, "usage_weighted", 4)
    assert pick(balancer, pool, exclude={100}) == 1
    assert pick(balancer, pool, exclude=(100, 101)) == 2


@pytest.mark.parametrize("status", ["paused", "reauth_required", "deactivated", "something_new"])
def test_standing_statuses_are_never_routed(slots, status):
    pool = [account(0, status), account(1)]
    use(slots, 1, 90)
    assert pick(Balancer(slots, "usage_weighted", 4), pool) == 1


@pytest.mark.parametrize("status", ["rate_limited", "quota_exceeded"])
def test_timed_statuses_end_at_status_until(slots, status):
    pool = [account(0, status, until=NOW + 60), account(1)]
    use(slots, 1, 90)
    balancer = Balancer(slots, "usage_weighted", 4)
    assert pick(balancer, pool) == 1
    assert balancer.select(pool, session_key=None, now=NOW + 61).candidate.slot == 0


def test_spent_windows_are_skipped_until_they_reset(slots):
    pool = [account(0), account(1), account(2)]
    use(slots, 0, 100)
    use(slots, 1, 5, secondary=100)
    use(slots, 2, 95)
    balancer = Balancer(slots, "least_inflight", 4)
    assert pick(balancer, pool) == 2
    assert balancer.select(pool, session_key=None, now=NOW + 3601).candidate.slot == 0


def test_credits_lift_a_spent_weekly_window_but_not_the_short_one(slots):
    pool = [account(0), account(1)]
    use(slots, 0, 5, secondary=100)
    use(slots, 1, 100)
    slots.set(0, Field.CREDITS_USABLE, 1.0)
    slots.set(1, Field.CREDITS_USABLE, 1.0)
    assert pick(Balancer(slots, "usage_weighted", 4), pool) == 0


def test_model_plans_filter(slots):
    pool = [account(0, plan="free"), account(1, plan="pro")]
    use(slots, 1, 90)
    balancer = Balancer(slots, "usage_weighted", 4)
    assert pick(balancer, pool, model_plans={"pro", "team"}) == 1
    assert pick(balancer, pool, model_plans=None) == 0


def test_acquire_and_release_count_in_flight_across_workers(slots):
    pool = [account(0), account(1)]
    first, second = Balancer(slots, "least_inflight", 4), Balancer(slots, "least_inflight", 4)
    first.acquire(pool[0])
    assert pick(second, pool) == 1  # the other worker sees the in-flight request
    assert slots.get(0, Field.REQUESTS) == 1
    first.release(pool[0])
    first.release(pool[0])  # a double release (or a reset slot) never goes below zero
    assert slots.get(0, Field.INFLIGHT) == 0
    assert pick(second, pool) == 0
