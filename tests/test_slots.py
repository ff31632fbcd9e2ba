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
