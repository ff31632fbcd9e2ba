"""Timing of a planned turn on the wire: time to first byte, stalls, delta pacing and cut streams.
Owns the batching of events into as few writes as the behaviour allows (one write when unpaced)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .behaviour import Behaviour
from .turns import Turn

Send = Callable[[list[dict]], Awaitable[None]]


def cut_position(turn: Turn, behaviour: Behaviour) -> int | None:
    """How many events go out before a cut stream drops the connection (never the terminal one)."""
    if not behaviour.cut_stream or turn.terminal not in ("completed", "incomplete"):
        return None
    wanted = max(0, behaviour.cut_after_deltas)
    if wanted == 0:
        return 1
    if len(turn.delta_positions) >= wanted:
        return min(turn.delta_positions[wanted - 1] + 1, len(turn.events) - 1)
    return len(turn.events) - 1


async def play(turn: Turn, behaviour: Behaviour, send: Send) -> bool:
    """Send the turn's events; False when the behaviour cut the stream before its terminal event."""
    events = turn.events
    cut = cut_position(turn, behaviour)
    end = len(events) if cut is None else cut
    interval = behaviour.delta_interval_ms / 1000
    stall = behaviour.stall_ms / 1000
    if not interval and not stall:
        await send(events[:end])
        return cut is None
    paced = frozenset(turn.delta_positions[1:]) if interval else frozenset()
    batch: list[dict] = []
    for i in range(end):
        if i in paced:
            if batch:
                await send(batch)
                batch = []
            await asyncio.sleep(interval)
        batch.append(events[i])
        if i == 0 and stall:
            await send(batch)
            batch = []
            await asyncio.sleep(stall)
    if batch:
        await send(batch)
    return cut is None
