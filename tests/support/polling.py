"""Waiting in tests: poll a check until it holds, with a deadline, never a bare sleep (style rule 12).
Owns the suite's one poll loop and its failure message, which names the check and what it last saw."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

_SHOWN_CHARS = 2000


async def eventually(
    check: Callable[[], Any],
    until: Callable[[Any], object] | None = None,
    *,
    timeout: float = 5.0,
    interval: float = 0.05,
    hold: float = 0.0,
    what: str | None = None,
) -> Any:
    """Call `check` (answering a value, or an awaitable of one) until the value is truthy, or `until(value)`
    is, and answer that value. With `hold`, it must stay so for that many seconds without a break. Past
    `timeout`: AssertionError naming the check and the last value seen. Exceptions of the check propagate."""
    poll = _Poll(check, until, timeout=timeout, hold=hold, what=what)
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if poll.done(value):
            return value
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], Any], until: Callable[[Any], object] | None = None, **options) -> Any:
    """`eventually` (with the same keyword options) for code without an event loop: threads, sync tests."""
    interval = options.pop("interval", 0.05)
    poll = _Poll(check, until, **options)
    while not poll.done(value := check()):
        time.sleep(interval)
    return value


class _Poll:
    """One wait's bookkeeping: the deadline, the hold streak, and the failure once the deadline passes."""

    def __init__(
        self, check, until, timeout: float = 5.0, hold: float = 0.0, what: str | None = None
    ) -> None:
        self.check, self.until, self.timeout, self.hold, self.what = check, until, timeout, hold, what
        self.started = time.monotonic()
        self.holding_since: float | None = None

    def done(self, value: object) -> bool:
        now = time.monotonic()
        if self.until(value) if self.until is not None else value:
            self.holding_since = now if self.holding_since is None else self.holding_since
            if now - self.holding_since >= self.hold:
                return True
        else:
            self.holding_since = None
        if now - self.started > self.timeout:
            held = f" for {self.hold}s" if self.hold else ""
            shown = repr(value)[:_SHOWN_CHARS]
            raise AssertionError(f"not true{held} within {self.timeout}s: {self._name()}\nlast seen: {shown}")
        return False

    def _name(self) -> str:
        if self.what:
            return self.what
        parts = [self.check] + ([self.until] if self.until is not None else [])
        return " / ".join(_source(part) for part in parts)


def _source(function: Callable) -> str:
    """A lambda's line of source, else the function's name: enough to find the wait in the test."""
    name = getattr(function, "__qualname__", repr(function))
    if not name.endswith("<lambda>"):
        return name
    try:
        return inspect.getsource(function).strip()[:300]
    except (OSError, TypeError):
        return name
