"""The shared counters: reservations are atomic, all-or-nothing, settled once, and expire if abandoned."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from server.db import Database
from server.keys import ledger, store
from server.keys.ledger import Hold
from server.keys.spec import KeySpec


@pytest.fixture
async def db(settings):
    database = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, database.open)
    yield database
    database.close()


async def _key_with(db: Database, *limits: dict) -> store.KeyRecord:
    spec = KeySpec.parse({"name": "k", "limits": list(limits)}, creating=True)
    key, _ = await db.run(store.create, spec)
    return key


def _hold(rule: store.LimitRule, amount: float, start: int = 1000) -> Hold:
    return Hold(rule.id, start, start + 60, amount, rule.max_value)


async def _counter(db: Database, rule: store.LimitRule, start: int = 1000) -> store.WindowUsage:
    return (await db.run(store.current_usage, [rule.id], 0)).get((rule.id, start), store.WindowUsage(0, 0))


def _granted(answer) -> list[float]:
    assert not isinstance(answer, ledger.Refusal), answer
    return [hold.amount for hold in answer]


async def test_reservations_are_capped_at_what_is_left_and_settle_to_real_usage(db):
    key = await _key_with(db, {"quantity": "tokens", "window": "minute", "max": 100})
    rule = key.limits[0]
    now = time.time()
    assert _granted(await db.run(ledger.reserve, "r1", "w1", [_hold(rule, 60)], now)) == [60]
    # 60 + 60 > 100 while r1 still holds: refused (retry), not granted the 40 left. Partial holds granted
    # beside running requests would each overrun when those hand back what they did not use.
    refusal = await db.run(ledger.reserve, "r2", "w1", [_hold(rule, 60)], now)
    assert refusal == ledger.Refusal(0, used=0, reserved=60)
    assert _granted(await db.run(ledger.reserve, "r2", "w1", [_hold(rule, 40)], now)) == [40]  # fits
    refusal = await db.run(ledger.reserve, "r3", "w1", [_hold(rule, 10)], now)  # nothing left
    assert refusal == ledger.Refusal(0, used=0, reserved=100)
    await db.run(ledger.settle, "r1", [_hold(rule, 60)], [25.0])
    assert await _counter(db, rule) == store.WindowUsage(25, 40)
    assert isinstance(await db.run(ledger.reserve, "r4", "w1", [_hold(rule, 60)], now), ledger.Refusal)
    await db.run(ledger.settle, "r2", [_hold(rule, 40)], [50.0])  # used more than it held
    assert await _counter(db, rule) == store.WindowUsage(75, 0)
    # Nothing else held: the last request holds what is left, and may overrun it by less than its use.
    assert _granted(await db.run(ledger.reserve, "r4", "w1", [_hold(rule, 60)], now)) == [25]
    await db.run(ledger.settle, "r4", [_hold(rule, 25)], [30.0])
    assert await _counter(db, rule) == store.WindowUsage(105, 0)


async def test_a_first_request_larger_than_the_budget_holds_the_whole_budget(db):
    key = await _key_with(db, {"quantity": "tokens", "window": "day", "max": 300})
    rule = key.limits[0]
    assert _granted(await db.run(ledger.reserve, "big", "w1", [_hold(rule, 4200)], time.time())) == [300]


async def test_all_rules_are_reserved_or_none(db):
    key = await _key_with(
        db,
        {"quantity": "requests", "window": "minute", "max": 10},
        {"quantity": "tokens", "window": "day", "max": 50},
    )
    requests, tokens = key.limits
    assert _granted(await db.run(ledger.reserve, "r0", "w1", [_hold(tokens, 60)], time.time())) == [50]
    holds = [_hold(requests, 1), _hold(tokens, 60)]
    assert (await db.run(ledger.reserve, "r1", "w1", holds, time.time())).index == 1  # tokens: none left
    assert await _counter(db, requests) == store.WindowUsage(0, 0)  # rolled back with the full rule


async def test_abandoned_reservations_expire_and_settling_later_does_not_release_twice(db):
    key = await _key_with(db, {"quantity": "tokens", "window": "minute", "max": 100})
    rule = key.limits[0]
    now = time.time()
    assert _granted(await db.run(ledger.reserve, "dead", "gone-worker", [_hold(rule, 70)], now)) == [70]
    assert _granted(await db.run(ledger.reserve, "live", "live-worker", [_hold(rule, 20)], now)) == [20]
    later = now + ledger.RESERVATION_TTL_S / 2
    assert await db.run(ledger.renew, "live-worker", later) == 1
    assert await db.run(ledger.expire, now + ledger.RESERVATION_TTL_S + 1) == 1  # only the dead one
    assert await _counter(db, rule) == store.WindowUsage(0, 20)
    # The dead worker's request did finish after all: its usage counts, its hold is not released twice.
    await db.run(ledger.settle, "dead", [_hold(rule, 70)], [30.0])
    assert await _counter(db, rule) == store.WindowUsage(30, 20)


async def test_racing_threads_never_overspend(db):
    """Many threads (each its own connection) race for a budget of 50 one-unit reservations."""
    key = await _key_with(db, {"quantity": "requests", "window": "minute", "max": 50})
    rule = key.limits[0]
    now = time.time()

    def one(i: int) -> bool:
        return not isinstance(ledger.reserve(db.orm, f"r{i}", "w", [_hold(rule, 1)], now), ledger.Refusal)

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = sum(pool.map(one, range(120)))
    assert admitted == 50
    assert await _counter(db, rule) == store.WindowUsage(0, 50)
