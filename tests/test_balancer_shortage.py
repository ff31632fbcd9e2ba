"""When no account can take a request: the reason the proxy reports and when to retry."""

from __future__ import annotations

import pytest

from server.balancer.candidates import Candidate
from server.balancer.selection import Balancer
from server.balancer.shortage import NoAccountAvailable
from server.balancer.slots import AccountSlots, Field, SharedPrimitives

NOW = 1_750_000_000.0


@pytest.fixture
def slots() -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=16))


def account(slot: int, status: str = "active", plan: str = "plus", until: float = 0.0) -> Candidate:
    return Candidate(account_id=100 + slot, slot=slot, status=status, plan_type=plan, status_until=until)


def spend(slots: AccountSlots, slot: int, reset_in: float, window: str = "primary") -> None:
    used, reset = (
        (Field.PRIMARY_USED, Field.PRIMARY_RESET_AT)
        if window == "primary"
        else (Field.SECONDARY_USED, Field.SECONDARY_RESET_AT)
    )
    slots.set(slot, used, 100.0)
    slots.set(slot, reset, NOW + reset_in)


def shortage(slots: AccountSlots, candidates, **kwargs) -> NoAccountAvailable:
    with pytest.raises(NoAccountAvailable) as caught:
        Balancer(slots, "usage_weighted", 4).select(
            candidates, session_key=kwargs.pop("session_key", None), now=NOW, **kwargs
        )
    return caught.value


@pytest.mark.parametrize("session_key", [None, "session"])
def test_no_accounts_added(slots, session_key):
    error = shortage(slots, [], session_key=session_key)
    assert (error.reason, error.retry_at) == ("no_accounts", None)
    assert error.message == "No accounts have been added"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("paused", "all_paused"),
        ("reauth_required", "all_reauth_required"),
        ("deactivated", "all_deactivated"),
    ],
)
def test_all_accounts_in_one_standing_status(slots, status, reason):
    error = shortage(slots, [account(0, status), account(1, status)])
    assert (error.reason, error.retry_at) == (reason, None)


def test_the_most_common_standing_status_wins(slots):
    pool = [account(0, "paused"), account(1, "deactivated"), account(2, "deactivated")]
    assert shortage(slots, pool).reason == "all_deactivated"
    assert shortage(slots, [account(0, "paused"), account(1, "reauth_required")]).reason == "all_paused"


def test_all_spent_is_exhausted_even_with_a_paused_account_beside_it(slots):
    spend(slots, 0, 600)
    spend(slots, 1, 90_000, window="secondary")
    pool = [account(0), account(1), account(2, "paused"), account(3, "quota_exceeded", until=NOW + 300)]
    error = shortage(slots, pool)
    assert (error.reason, error.retry_at) == ("all_exhausted", NOW + 300)  # the soonest reset


def test_an_account_blocked_by_both_windows_comes_back_when_both_reset(slots):
    spend(slots, 0, 600)
    spend(slots, 0, 90_000, window="secondary")
    assert shortage(slots, [account(0)]).retry_at == NOW + 90_000


def test_spent_accounts_beside_cooling_ones_are_an_exhausted_pool_back_at_the_soonest_end(slots):
    # A short error cooldown must not turn a spent pool's 429 (with its reset) into a 503.
    spend(slots, 0, 600)
    slots.set(1, Field.COOLDOWN_UNTIL, NOW + 20)
    pool = [account(0), account(1), account(2, "rate_limited", until=NOW + 45)]
    error = shortage(slots, pool)
    assert (error.reason, error.retry_at) == ("all_exhausted", NOW + 20)


@pytest.mark.parametrize("other", ["paused", "reauth_required", "deactivated"])
def test_spent_and_cooling_beside_an_account_a_person_must_fix_is_exhausted(slots, other):
    spend(slots, 0, 600)
    slots.set(1, Field.COOLDOWN_UNTIL, NOW + 20)
    error = shortage(slots, [account(0), account(1), account(2, other)])
    assert (error.reason, error.retry_at) == ("all_exhausted", NOW + 20)


def test_only_cooling_accounts_are_a_pool_down_for_other_reasons(slots):
    slots.set(0, Field.COOLDOWN_UNTIL, NOW + 20)
    error = shortage(slots, [account(0), account(1, "paused")])
    assert (error.reason, error.retry_at) == ("all_cooling_down", NOW + 20)


def test_every_account_tried_reports_all_excluded(slots):
    error = shortage(slots, [account(0), account(1), account(2, "paused")], exclude={100, 101})
    assert (error.reason, error.retry_at) == ("all_excluded", None)


def test_tried_accounts_mixed_with_cooling_ones_give_the_soonest_return(slots):
    slots.set(1, Field.COOLDOWN_UNTIL, NOW + 20)
    error = shortage(slots, [account(0), account(1)], exclude={100})
    assert (error.reason, error.retry_at) == ("all_excluded", NOW + 20)


def test_a_tried_account_that_hit_its_usage_limit_counts_as_exhausted(slots):
    spend(slots, 0, 600)
    spend(slots, 1, 1200)
    error = shortage(slots, [account(0), account(1)], exclude={100})
    assert (error.reason, error.retry_at) == ("all_exhausted", NOW + 600)


def test_no_account_on_a_plan_for_the_model(slots):
    error = shortage(slots, [account(0, plan="free"), account(1, plan="plus")], model_plans={"pro"})
    assert error.reason == "no_plan_for_model"


def test_the_plan_accounts_decide_the_reason(slots):
    pool = [account(0, plan="free"), account(1, "paused", plan="pro")]
    assert shortage(slots, pool, model_plans={"pro"}).reason == "all_paused"


def test_a_window_past_its_reset_no_longer_blocks(slots):
    spend(slots, 0, -1)
    selection = Balancer(slots, "usage_weighted", 4).select([account(0)], session_key=None, now=NOW)
    assert selection.candidate.account_id == 100
