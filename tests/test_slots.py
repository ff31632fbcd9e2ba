"""Shared account-state slots: what one worker process writes, another sees."""

from __future__ import annotations

import multiprocessing

from server.balancer.slots import AccountSlots, Field, SharedPrimitives


def _worker_writes(primitives_args, done):
    slots = AccountSlots(SharedPrimitives(*primitives_args))
    slots.set(3, Field.COOLDOWN_UNTIL, 1234.5)
    for _ in range(1000):
        slots.add(3, Field.INFLIGHT, 1)
    slots.bump_generation()
    done.put(True)


def test_change_in_one_worker_process_is_seen_by_another():
    ctx = multiprocessing.get_context("spawn")  # how Sanic starts its workers
    primitives = SharedPrimitives.create(capacity=8, context=ctx)
    mine = AccountSlots(primitives)
    before = mine.generation
    done = ctx.Queue()
    writers = [
        ctx.Process(target=_worker_writes, args=((primitives.slots, primitives.generation), done))
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    for _ in writers:
        done.get(timeout=60)
    for writer in writers:
        writer.join(30)
    assert mine.get(3, Field.COOLDOWN_UNTIL) == 1234.5
    assert mine.get(3, Field.INFLIGHT) == 2000  # increments from two processes, none lost
    assert mine.generation == before + 2
    assert mine.snapshot(2) == (0.0,) * len(Field)


def _worker_changes_a_window(primitives, done):
    slots = AccountSlots(primitives)
    slots.add_inflight(1, 1)
    slots.set(1, Field.REQUESTS, 7.0)
    slots.set(1, Field.PRIMARY_USED, 42.0)
    done.put(True)


def test_a_window_written_in_another_worker_counts_as_a_change_and_in_flight_counts_do_not():
    """Workers keep what they derive from the rows (the balancer's kept order) until the change counter
    moves: every write but the per-request counts must move it, in every process."""
    ctx = multiprocessing.get_context("spawn")
    primitives = SharedPrimitives.create(capacity=4, context=ctx)
    mine = AccountSlots(primitives)
    mine.set(1, Field.PRIMARY_USED, 42.0)
    before = mine.changes
    mine.set(1, Field.PRIMARY_USED, 42.0)  # the same value again: no change
    mine.add_inflight(2, 1)
    mine.set(2, Field.INFLIGHT, 3.0)
    assert mine.changes == before
    done = ctx.Queue()
    writer = ctx.Process(target=_worker_changes_a_window, args=(primitives, done))
    writer.start()
    done.get(timeout=60)
    writer.join(30)
    assert mine.changes == before  # it wrote 42 again, and counts
    mine.set(1, Field.COOLDOWN_UNTIL, 5.0)
    mine.reset(3)
    assert mine.changes == before + 2
    writer = ctx.Process(target=_worker_changes_a_window, args=(primitives, done))
    mine.set(1, Field.PRIMARY_USED, 0.0)
    writer.start()
    done.get(timeout=60)
    writer.join(30)
    assert mine.changes == before + 4 and mine.get(1, Field.PRIMARY_USED) == 42.0
