"""How long an account sits out after each kind of upstream failure, and how it comes back."""

from __future__ import annotations

import pytest

from server.balancer.candidates import Candidate
from server.balancer.cooldowns import transient_backoff
from server.balancer.selection import Balancer
from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.ratelimits import RateLimitSnapshot, UsageWindow

NOW = 1_750_000_000.0
A = Candidate(account_id=100, slot=0, status="active", plan_type="plus")
B = Candidate(account_id=101, slot=1, status="active", plan_type="plus")


@pytest.fixture
def slots() -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=16))


@pytest.fixture
def balancer(slots) -> Balancer:
    return Balancer(slots, "usage_weighted", 4)


def failure(kind: FailureKind, retry_at: float | None = None) -> UpstreamFailure:
    return UpstreamFailure(kind, retry_at, kind.value, "", 500)


def chosen(balancer: Balancer, now: float) -> int:
    return balancer.select([A, B], session_key=None, now=now).candidate.account_id


def test_a_hinted_rate_limit_benches_the_account_until_the_hint(balancer, slots):
    slots.set(B.slot, Field.PRIMARY_USED, 50.0)  # A is preferred while it is available
    until = balancer.record_failure(A, failure(FailureKind.RATE_LIMIT, NOW + 11.5), NOW)
    assert until == NOW + 11.5
    assert chosen(balancer, NOW + 11) == 101
    assert chosen(balancer, NOW + 11.5) == 100  # recovered when the cooldown ends


def test_an_unhinted_rate_limit_backs_off_briefly_and_grows(balancer):
    delays = [
        balancer.record_failure(A, failure(FailureKind.RATE_LIMIT), NOW + 100 * n) - NOW - 100 * n
        for n in range(7)
    ]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_transient_failures_back_off_only_when_repeated(balancer, slots):
    ends = [balancer.record_failure(A, failure(FailureKind.TRANSIENT), NOW + 100 * n) for n in range(8)]
    delays = [end - NOW - 100 * n for n, end in enumerate(ends)]
    assert delays == [0, 1, 2, 4, 8, 16, 30, 30]  # never a long fixed timer
    assert slots.get(A.slot, Field.FAILURE_STREAK) == 8


def test_transient_backoff_policy():
    assert [transient_backoff(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 30, 30, 30]


def test_success_clears_the_failure_streak(balancer, slots):
    for _ in range(3):
        balancer.record_failure(A, failure(FailureKind.TRANSIENT), NOW)
    balancer.record_success(A, None, NOW)
    assert slots.get(A.slot, Field.FAILURE_STREAK) == 0
    assert balancer.record_failure(A, failure(FailureKind.TRANSIENT), NOW + 50) == NOW + 50


@pytest.mark.parametrize("kind", [FailureKind.USAGE_LIMIT, FailureKind.NO_QUOTA])
def test_a_spent_window_benches_until_its_reset(balancer, slots, kind):
    until = balancer.record_failure(A, failure(kind, NOW + 1800), NOW)
    assert until == NOW + 1800
    assert slots.get(A.slot, Field.PRIMARY_USED) == 100.0
    assert slots.get(A.slot, Field.PRIMARY_RESET_AT) == NOW + 1800
    assert chosen(balancer, NOW + 1799) == 101
    assert chosen(balancer, NOW + 1800) == 100


@pytest.mark.parametrize("kind", [FailureKind.USAGE_LIMIT, FailureKind.NO_QUOTA])
def test_a_spent_window_without_a_reset_time_benches_for_an_hour(balancer, kind):
    assert balancer.record_failure(A, failure(kind), NOW) == NOW + 3600


def test_a_usage_limit_at_the_weekly_reset_marks_the_weekly_window(balancer, slots):
    slots.set(A.slot, Field.PRIMARY_RESET_AT, NOW + 600)
    slots.set(A.slot, Field.SECONDARY_RESET_AT, NOW + 86400)
    slots.set(A.slot, Field.CREDITS_USABLE, 1.0)
    balancer.record_failure(A, failure(FailureKind.USAGE_LIMIT, NOW + 86400 + 1), NOW)
    assert slots.get(A.slot, Field.SECONDARY_USED) == 100.0
    assert slots.get(A.slot, Field.CREDITS_USABLE) == 0.0  # the upstream refused: credits did not help
    assert slots.get(A.slot, Field.PRIMARY_USED) == 0.0


@pytest.mark.parametrize(
    "kind",
    [
        FailureKind.AUTH,
        FailureKind.PREVIOUS_RESPONSE_NOT_FOUND,
        FailureKind.MODEL_NOT_SUPPORTED,
        FailureKind.WEBSOCKET_EXPIRED,
        FailureKind.CLIENT_ERROR,
    ],
)
def test_failures_that_say_nothing_about_the_account_bench_nothing(balancer, slots, kind):
    assert balancer.record_failure(A, failure(kind), NOW) == NOW
    assert slots.snapshot(A.slot) == (0.0,) * len(Field)


def test_a_deactivated_account_is_held_out_until_the_roster_knows(balancer):
    assert balancer.record_failure(A, failure(FailureKind.DEACTIVATED), NOW) == NOW + 300


def test_a_burst_limit_never_shortens_a_longer_cooldown(balancer, slots):
    balancer.record_failure(A, failure(FailureKind.USAGE_LIMIT, NOW + 1800), NOW)
    assert balancer.record_failure(A, failure(FailureKind.RATE_LIMIT, NOW + 5), NOW) == NOW + 1800
    assert slots.get(A.slot, Field.COOLDOWN_UNTIL) == NOW + 1800


def test_windows_reported_with_a_success_are_applied(balancer):
    spent = RateLimitSnapshot(UsageWindow(100.0, 300, NOW + 60), None, None, None, None, None)
    balancer.record_success(A, spent, NOW)
    assert chosen(balancer, NOW) == 101
    assert chosen(balancer, NOW + 60) == 100


def test_cooldowns_are_seen_by_every_worker(slots):
    first, second = Balancer(slots, "usage_weighted", 4), Balancer(slots, "least_inflight", 4)
    first.record_failure(A, failure(FailureKind.RATE_LIMIT, NOW + 30), NOW)
    assert chosen(second, NOW) == 101
