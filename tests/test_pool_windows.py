"""The pool's combined windows over a real shared slot table: which accounts count and how."""

from __future__ import annotations

from types import SimpleNamespace

from server.balancer.candidates import ACTIVE, Candidate
from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.proxy.pool_views import PoolViews
from server.proxy.pool_windows import RecentWindows, combine

NOW = 1_000_000.0


class Direct:
    """Egress routes with no proxy bound: every account goes direct."""

    def unavailable_accounts(self, now: float) -> frozenset[int]:
        return frozenset()


def pool_of(*accounts: tuple[str, float, float, float, float]):
    """accounts: (status, 5h used %, 5h reset, weekly used %, weekly reset), one slot each."""
    slots = AccountSlots(SharedPrimitives.create(len(accounts)))
    candidates = []
    for slot, (status, primary, primary_reset, secondary, secondary_reset) in enumerate(accounts):
        slots.set(slot, Field.PRIMARY_USED, primary)
        slots.set(slot, Field.PRIMARY_RESET_AT, primary_reset)
        slots.set(slot, Field.SECONDARY_USED, secondary)
        slots.set(slot, Field.SECONDARY_RESET_AT, secondary_reset)
        until = NOW + 600 if status == "quota_exceeded" else 0.0
        candidates.append(
            Candidate(account_id=slot + 1, slot=slot, status=status, plan_type="plus", status_until=until)
        )
    roster = SimpleNamespace(candidates=tuple(candidates))
    return RecentWindows(slots, PoolViews(roster, Direct())), slots, roster


def test_unroutable_accounts_are_left_out_and_a_spent_one_counts_as_full():
    _, slots, roster = pool_of(
        (ACTIVE, 10.0, NOW + 100, 20.0, NOW + 5000),
        ("quota_exceeded", 30.0, NOW + 50, 40.0, NOW + 4000),
        ("paused", 0.0, NOW + 10, 0.0, NOW + 10),
        (ACTIVE, 130.0, NOW - 5, -3.0, NOW + 9000),  # out-of-range figures are clamped; a past reset ignored
    )
    pool = combine(slots, roster.candidates, NOW)
    assert pool.accounts == 3
    assert pool.primary.used_percent == (10.0 + 100.0 + 100.0) / 3
    assert pool.primary.reset_at == NOW + 50
    assert pool.secondary.used_percent == (20.0 + 100.0 + 0.0) / 3
    assert pool.secondary.reset_at == NOW + 4000
    assert not pool.limit_reached


def test_a_keys_accounts_only_and_a_spent_or_empty_pool_is_at_its_limit():
    windows, _, _ = pool_of(
        (ACTIVE, 100.0, NOW + 100, 100.0, NOW + 5000),
        (ACTIVE, 5.0, NOW + 100, 5.0, NOW + 5000),
        ("paused", 0.0, NOW + 10, 0.0, NOW + 10),
    )
    spent = windows.of(frozenset({1}), NOW)
    assert (spent.accounts, spent.primary.used_percent, spent.limit_reached) == (1, 100.0, True)
    empty = windows.of(frozenset({3}), NOW)
    assert (empty.accounts, empty.primary, empty.secondary, empty.limit_reached) == (0, None, None, True)
    assert windows.of(None, NOW).limit_reached is False


def test_a_reading_serves_its_view_for_a_second_and_a_roster_change_is_a_new_view():
    windows, slots, roster = pool_of(
        (ACTIVE, 10.0, NOW + 100, 10.0, NOW + 5000),
        (ACTIVE, 30.0, NOW + 100, 30.0, NOW + 5000),
    )
    key = frozenset({1, 2})
    assert windows.of(key, NOW).primary.used_percent == 20.0
    slots.set(1, Field.PRIMARY_USED, 50.0)
    assert windows.of(key, NOW + 0.5).primary.used_percent == 20.0  # the same reading, under TTL_S old
    assert windows.of(key, NOW + 0.5, fresh=True).primary.used_percent == 30.0  # /status reads now
    slots.set(1, Field.PRIMARY_USED, 70.0)
    assert windows.of(key, NOW + 1.6).primary.used_percent == 40.0  # a second on: read again
    roster.candidates = roster.candidates[:1]  # account 2 left the pool: at once, not a second later
    assert windows.of(key, NOW + 1.7).accounts == 1
