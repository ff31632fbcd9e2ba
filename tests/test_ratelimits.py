"""Quota windows read from upstream headers, codex.rate_limits events and /wham/usage, garbage included."""

from __future__ import annotations

import pytest

from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.balancer.windows import apply_to_slots
from server.upstream.ratelimits import (
    RateLimitSnapshot,
    UsageWindow,
    from_headers,
    from_rate_limits_event,
    from_wham_usage,
)

NOW = 1_750_000_000.0


@pytest.fixture
def slots() -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=16))


def test_headers_give_both_windows_and_credits_whatever_the_case_of_the_names():
    snapshot = from_headers(
        {
            "X-Codex-Primary-Used-Percent": "42.5",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(int(NOW) + 3600),
            "X-CODEX-SECONDARY-USED-PERCENT": "12",
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(int(NOW) + 86400),
            "x-codex-credits-has-credits": "False",
            "x-codex-credits-unlimited": "0",
            "x-codex-credits-balance": "12.50",
            "content-type": "text/event-stream",
        },
        NOW,
    )
    assert snapshot == RateLimitSnapshot(
        primary=UsageWindow(42.5, 300, NOW + 3600),
        secondary=UsageWindow(12.0, 10080, NOW + 86400),
        credits_has_credits=False,
        credits_unlimited=False,
        credits_balance=12.5,
        plan_type=None,
    )
    assert snapshot.credits_usable is True  # a positive balance lifts the weekly window


def test_relative_reset_header_is_accepted_but_the_absolute_one_wins():
    relative = from_headers(
        {"x-codex-primary-used-percent": "10", "x-codex-primary-reset-after-seconds": "90"}, NOW
    )
    assert relative.primary.reset_at == NOW + 90
    both = from_headers(
        {
            "x-codex-primary-used-percent": "10",
            "x-codex-primary-reset-after-seconds": "90",
            "x-codex-primary-reset-at": str(int(NOW) + 500),
        },
        NOW,
    )
    assert both.primary.reset_at == NOW + 500


def test_a_lone_window_leaves_the_other_empty():
    snapshot = from_headers(
        {"x-codex-primary-used-percent": "3", "x-codex-primary-window-minutes": "43200"}, NOW
    )
    assert snapshot.primary == UsageWindow(3.0, 43200, None)
    assert snapshot.secondary is None
    assert snapshot.credits_usable is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"x-codex-turn-state": "opaque"},
        # per-model families are not the account's main windows
        {"x-codex-other-primary-used-percent": "70", "x-codex-bengalfox-limit-name": "bengalfox"},
        {"x-codex-primary-used-percent": "lots"},
    ],
)
def test_headers_without_the_codex_windows_give_nothing(headers):
    assert from_headers(headers, NOW) is None


def test_garbage_header_values_become_none_and_never_raise():
    snapshot = from_headers(
        {
            "x-codex-primary-used-percent": "-5",
            "x-codex-primary-window-minutes": "five hours",
            "x-codex-primary-reset-at": "tomorrow",
            "x-codex-primary-reset-after-seconds": "-1",
            "x-codex-secondary-used-percent": "nan",
            "x-codex-credits-has-credits": "maybe",
            "x-codex-credits-unlimited": "",
            "x-codex-credits-balance": "inf",
        },
        NOW,
    )
    assert snapshot.primary == UsageWindow(0.0, None, None)  # a negative percent is clamped
    assert snapshot.secondary is None
    assert (snapshot.credits_has_credits, snapshot.credits_unlimited, snapshot.credits_balance) == (None,) * 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (str(int(NOW) + 60), NOW + 60),
        (str(int(NOW + 60) * 1000), NOW + 60),  # milliseconds
        ("12", None),  # not an epoch
        (str(int(NOW) + 400 * 86400), None),  # further than any window
        (" 1750000100.5 ", 1750000100.5),
    ],
)
def test_reset_at_header_sanity(raw, expected):
    snapshot = from_headers({"x-codex-primary-used-percent": "1", "x-codex-primary-reset-at": raw}, NOW)
    assert snapshot.primary.reset_at == expected


def test_non_mapping_headers_give_nothing():
    assert from_headers(None, NOW) is None  # type: ignore[arg-type]
    assert from_headers({1: "2"}, NOW) is None  # type: ignore[dict-item]


def test_rate_limits_event_is_read_like_the_headers():
    event = {
        "type": "codex.rate_limits",
        "plan_type": "plus",
        "rate_limits": {
            "allowed": True,
            "limit_reached": False,
            "primary": {"used_percent": 42.0, "window_minutes": 300, "reset_at": NOW + 100},
            "secondary": {"used_percent": 12.5, "window_minutes": 10080, "resets_at": NOW + 200},
        },
        "credits": {"has_credits": False, "unlimited": True, "balance": "0"},
        "metered_limit_name": "codex",
    }
    snapshot = from_rate_limits_event(event, NOW)
    assert snapshot.primary == UsageWindow(42.0, 300, NOW + 100)
    assert snapshot.secondary == UsageWindow(12.5, 10080, NOW + 200)  # `resets_at` spelling
    assert snapshot.plan_type == "plus"
    assert snapshot.credits_usable is True


def test_rate_limits_event_with_only_a_relative_reset():
    event = {
        "rate_limits": {"primary": {"used_percent": 5, "window_minutes": 300, "reset_after_seconds": 30}}
    }
    assert from_rate_limits_event(event, NOW).primary == UsageWindow(5.0, 300, NOW + 30)


def test_rate_limits_event_for_another_model_bucket_is_ignored():
    event = {
        "limit_id": "codex_other",
        "rate_limits": {"primary": {"used_percent": 99, "window_minutes": 300}},
    }
    assert from_rate_limits_event(event, NOW) is None


@pytest.mark.parametrize(
    "event",
    [None, [], "codex.rate_limits", {}, {"rate_limits": "full"}, {"rate_limits": {"primary": [1, 2]}}],
)
def test_garbage_rate_limits_events_give_nothing(event):
    assert from_rate_limits_event(event, NOW) is None


def test_wham_usage_windows_are_sized_in_seconds():
    body = {
        "plan_type": "plus",
        "rate_limit": {
            "allowed": True,
            "limit_reached": False,
            "primary_window": {
                "used_percent": 45,
                "limit_window_seconds": 18000,
                "reset_after_seconds": 3600,
                "reset_at": NOW + 3500,
            },
            "secondary_window": {
                "used_percent": 30,
                "limit_window_seconds": 604801,
                "reset_after_seconds": None,
                "reset_at": None,
            },
        },
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
        "additional_rate_limits": [{"limit_name": "codex_other", "rate_limit": {"primary_window": {}}}],
    }
    snapshot = from_wham_usage(body, NOW)
    assert snapshot.primary == UsageWindow(45.0, 300, NOW + 3500)  # reset_at preferred
    assert snapshot.secondary == UsageWindow(30.0, 10081, None)  # ceil(seconds / 60)
    assert snapshot.plan_type == "plus"
    assert snapshot.credits_usable is False


def test_wham_usage_lone_monthly_window_and_relative_reset():
    body = {
        "plan_type": "free",
        "rate_limit": {
            "primary_window": {
                "used_percent": 7,
                "limit_window_seconds": 2592000,
                "reset_after_seconds": 600,
            },
            "secondary_window": None,
        },
    }
    snapshot = from_wham_usage(body, NOW)
    assert snapshot.primary == UsageWindow(7.0, 43200, NOW + 600)
    assert snapshot.secondary is None


@pytest.mark.parametrize(
    "body", [None, "oops", [], {}, {"rate_limit": None}, {"rate_limit": {"primary_window": 3}}]
)
def test_garbage_wham_usage_gives_nothing(body):
    assert from_wham_usage(body, NOW) is None


def test_applying_a_snapshot_writes_the_slot(slots):
    snapshot = RateLimitSnapshot(
        UsageWindow(42.0, 300, NOW + 60), UsageWindow(100.0, 10080, NOW + 600), True, False, None, "plus"
    )
    apply_to_slots(slots, 3, snapshot)
    assert slots.get(3, Field.PRIMARY_USED) == 42.0
    assert slots.get(3, Field.PRIMARY_RESET_AT) == NOW + 60
    assert slots.get(3, Field.SECONDARY_USED) == 100.0
    assert slots.get(3, Field.SECONDARY_RESET_AT) == NOW + 600
    assert slots.get(3, Field.CREDITS_USABLE) == 1.0
    assert slots.snapshot(2) == (0.0,) * len(Field)


def test_a_window_the_backend_stopped_reporting_is_cleared(slots):
    slots.set(3, Field.SECONDARY_USED, 100.0)
    slots.set(3, Field.SECONDARY_RESET_AT, NOW + 600)
    apply_to_slots(slots, 3, RateLimitSnapshot(UsageWindow(5.0, 300, None), None, None, None, None, None))
    assert slots.get(3, Field.PRIMARY_USED) == 5.0
    assert slots.get(3, Field.PRIMARY_RESET_AT) == 0.0
    assert slots.get(3, Field.SECONDARY_USED) == 0.0
    assert slots.get(3, Field.SECONDARY_RESET_AT) == 0.0


def test_a_snapshot_with_only_credits_leaves_the_windows_alone(slots):
    slots.set(3, Field.PRIMARY_USED, 80.0)
    slots.set(3, Field.CREDITS_USABLE, 1.0)
    apply_to_slots(slots, 3, RateLimitSnapshot(None, None, False, False, 0.0, None))
    assert slots.get(3, Field.PRIMARY_USED) == 80.0
    assert slots.get(3, Field.CREDITS_USABLE) == 0.0


def test_answers_that_barely_move_a_window_do_not_count_as_a_change_of_the_pool(slots):
    """Nearly every answer moves the percent by hundredths and lands its reset a fraction later; writing
    those would make every worker re-sort its open accounts on every answer (balancer/open_order.py)."""

    def answer(primary: float, reset_after: float) -> None:
        window = UsageWindow(primary, 300, NOW + reset_after)
        apply_to_slots(slots, 3, RateLimitSnapshot(window, None, None, None, None, None))

    answer(40.0, 600.0)
    changes = slots.changes
    answer(40.2, 600.4)
    answer(40.45, 599.6)
    assert slots.changes == changes
    assert (slots.get(3, Field.PRIMARY_USED), slots.get(3, Field.PRIMARY_RESET_AT)) == (40.0, NOW + 600)
    answer(40.5, 600.0)  # half a point: written, so the value is never more than that behind
    assert slots.get(3, Field.PRIMARY_USED) == 40.5 and slots.changes == changes + 1
    answer(40.5, 660.0)  # a new reset
    assert slots.get(3, Field.PRIMARY_RESET_AT) == NOW + 660 and slots.changes == changes + 2
    slots.set(3, Field.PRIMARY_USED, 99.8)
    answer(100.0, 660.0)  # spent is always written
    assert slots.get(3, Field.PRIMARY_USED) == 100.0
    answer(99.9, 660.0)  # and so is leaving it
    assert slots.get(3, Field.PRIMARY_USED) == 99.9
    answer(0.2, 18000.0)  # and a fresh window
    assert slots.get(3, Field.PRIMARY_USED) == 0.2
