"""Live account state shared by the workers of one host: a fixed table of float slots in shared memory.

The main process creates the raw multiprocessing objects (Sanic passes them to every worker); each
worker wraps them in `AccountSlots`. Nothing here is the only copy of anything that must survive a
restart: the database is the durable truth.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from dataclasses import dataclass
from enum import IntEnum
from multiprocessing.context import BaseContext
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray

import numpy as np

DEFAULT_CAPACITY = 512
# Worker processes whose in-flight counts are kept apart, so a dead worker's share can be given back
# (server/lifecycle/reclaim.py). Workers numbered beyond this still count, without a share.
MAX_WORKERS = 64


class Field(IntEnum):
    IN_USE = 0
    COOLDOWN_UNTIL = 1
    INFLIGHT = 2
    PRIMARY_USED = 3
    PRIMARY_RESET_AT = 4
    SECONDARY_USED = 5
    SECONDARY_RESET_AT = 6
    FAILURE_STREAK = 7
    REQUESTS = 8
    # 1.0 when paid credits lift the weekly (secondary) window: has credits, unlimited or balance > 0.
    CREDITS_USABLE = 9


WIDTH = len(Field)
# Fields that change with every request; writes to the others count as a change of the pool's state.
_VOLATILE = frozenset({Field.INFLIGHT, Field.REQUESTS})


@dataclass(frozen=True, slots=True)
class SharedPrimitives:
    """What the main process puts into app.shared_ctx (only multiprocessing objects)."""

    slots: SynchronizedArray[float]
    generation: Synchronized[int]
    # In-flight count per (worker, slot), guarded by the lock of `slots`; None: not kept (tests).
    shares: ctypes.Array[ctypes.c_double] | None = None
    # Bumped (under the lock of `slots`) by every write that is not an in-flight or request count, so a
    # worker can keep what it derived from the rows until it moves; None: this process's own counter.
    changes: ctypes.c_longlong | None = None

    @classmethod
    def create(cls, capacity: int = DEFAULT_CAPACITY, context: BaseContext | None = None) -> SharedPrimitives:
        ctx = context or multiprocessing.get_context("spawn")
        # The ctypes types, not their typecodes ("d", "q"): the same memory, and a type the checker knows.
        return cls(
            slots=ctx.Array(ctypes.c_double, capacity * WIDTH),
            generation=ctx.Value(ctypes.c_longlong, 1),
            shares=ctx.RawArray(ctypes.c_double, capacity * MAX_WORKERS),
            changes=ctx.RawValue(ctypes.c_longlong, 0),
        )


class AccountSlots:
    """One worker's view of the shared slot table and the roster generation counter."""

    def __init__(self, primitives: SharedPrimitives, worker: int | None = None) -> None:
        self._array = primitives.slots
        self._generation = primitives.generation
        self.capacity = len(self._array) // WIDTH
        self._shares = primitives.shares if worker is not None and 0 <= worker < MAX_WORKERS else None
        self._changes = primitives.changes if primitives.changes is not None else ctypes.c_longlong(0)
        self._share_base = (worker or 0) * self.capacity
        # Lock-free reads for the hot path: aligned 8-byte floats cannot tear on the platforms we run
        # on, and a row read a moment early only makes one routing choice slightly stale.
        raw = memoryview(primitives.slots.get_obj()).cast("B")
        self._view = self.view = raw.cast("d")
        # The same memory as a (capacity, WIDTH) array, for reading the whole pool at once.
        self.rows = np.frombuffer(raw, dtype=np.float64).reshape(-1, WIDTH)

    def get(self, slot: int, field: Field) -> float:
        return self._view[slot * WIDTH + field]

    def set(self, slot: int, field: Field, value: float) -> None:
        index = slot * WIDTH + field
        if field in _VOLATILE:
            self._array[index] = value
        elif self._view[index] != value:  # rewriting the same value is no change
            with self._array.get_lock():
                self._array[index] = value
                self._changes.value += 1

    def add(self, slot: int, field: Field, delta: float) -> float:
        """Atomic across processes: in-flight counts are changed by several workers at once."""
        with self._array.get_lock():
            index = slot * WIDTH + field
            value = self._array[index] + delta
            self._array[index] = value
            if delta and field not in _VOLATILE:
                self._changes.value += 1
            return value

    @property
    def changes(self) -> int:
        """How many times a field other than the in-flight and request counts changed (any worker).
        Read it before the rows: a write counted after that read is one the rows may miss."""
        return self._changes.value

    def add_inflight(self, slot: int, delta: float) -> float:
        """Count a request in or out of flight on the account, and in this worker's share of it."""
        with self._array.get_lock():
            index = slot * WIDTH + Field.INFLIGHT
            value = self._array[index] + delta
            if value < 0:  # the slot was reset while the request ran
                value = 0.0
            self._array[index] = value
            if self._shares is not None:
                share = self._share_base + slot
                self._shares[share] = max(0.0, self._shares[share] + delta)
            return value

    def snapshot(self, slot: int) -> tuple[float, ...]:
        start = slot * WIDTH
        return tuple(self._view[start : start + WIDTH])

    def reset(self, slot: int) -> None:
        start = slot * WIDTH
        with self._array.get_lock():
            self._array[start : start + WIDTH] = [0.0] * WIDTH
            self._changes.value += 1

    @property
    def generation(self) -> int:
        return self._generation.value

    def bump_generation(self) -> int:
        """Tell every worker on this host that accounts, keys or settings changed and must be reloaded."""
        with self._generation.get_lock():
            self._generation.value += 1
            return self._generation.value
