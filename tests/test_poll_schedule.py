"""Usage polls are spread over the interval and back off for accounts whose answer does not change."""

from __future__ import annotations

import random

from server.accounts.poll_schedule import MAX_BACKOFF, PollSchedule

NOW = 1_750_000_000.0


def test_five_hundred_accounts_are_spread_over_the_interval_not_polled_in_one_burst():
    schedule = PollSchedule(60.0, random.Random(1))
    accounts = list(range(1, 501))
    assert schedule.due(accounts, NOW) == []  # nobody at the first tick after start
    polled_at: dict[int, float] = {}
    per_tick = []
    for t in range(5, 65, 5):  # the job's ticks: interval / 12
        due = schedule.due(accounts, NOW + t)
        per_tick.append(len(due))
        for account_id in due:
            polled_at.setdefault(account_id, t)
            schedule.polled(account_id, ("same",), NOW + t)
    assert set(polled_at) == set(accounts)  # every account within one interval
    assert max(per_tick) < 80  # about 500 / 12 a tick, not 500 at once


def test_an_account_that_answers_the_same_is_polled_less_often_until_it_changes():
    schedule = PollSchedule(60.0, random.Random(2))
    schedule.due([7], NOW)
    gaps, now = [], NOW
    for _ in range(6):
        due_at = schedule.polled(7, ("plus", 12.0, 300, 3.0), now)
        gaps.append(due_at - now)
        now = due_at
    assert gaps[0] < 70 and gaps[1] > 100 and gaps[-1] > (MAX_BACKOFF - 1) * 60  # 60, 120, …, capped
    assert gaps[-1] < MAX_BACKOFF * 60 * 1.11
    assert schedule.polled(7, ("plus", 13.0, 300, 3.0), now) - now < 70  # a change: every interval again
    assert schedule.backoff(7) == 1
    assert schedule.polled(7, None, now) - now < 70  # a failed poll never backs off


def test_removed_accounts_are_forgotten():
    schedule = PollSchedule(60.0, random.Random(3))
    schedule.due([1, 2], NOW)
    schedule.due([2], NOW)
    assert schedule.backoff(1) == 1 and 1 not in schedule._due
