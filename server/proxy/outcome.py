"""What an upstream stream said about the request (`Outcome`), and `drain`, the one reader of an opened
stream's rest: every route that delivers a stream feeds it a consumer of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp

from server.proxy.trace import OpenedStream
from server.upstream.events import STREAM_INCOMPLETE, TERMINAL_EVENTS
from server.upstream.sse import SSEEvent
from server.usage.tokens import TokenUsage

log = logging.getLogger(__name__)


class Outcome:
    """What the stream said about the request, filled in as events pass."""

    __slots__ = ("status", "error_code", "usage", "terminal_seen", "response_id", "cut_reason")

    def __init__(self) -> None:
        self.status = 200
        self.error_code = ""
        self.usage: TokenUsage | None = None
        self.terminal_seen = False
        self.response_id = ""
        self.cut_reason = ""  # set when the server cut the stream (shutdown deadline)

    def observe(self, event: SSEEvent) -> None:
        if event.name not in TERMINAL_EVENTS:
            return
        self.terminal_seen = True
        data = event.data()
        response = data.get("response")
        if not isinstance(response, dict):
            response = {}
        self.response_id = str(response.get("id") or "")
        self.usage = TokenUsage.from_response(response)
        if event.name == "response.failed":
            error = response.get("error") or {}
            self.status, self.error_code = 502, str(error.get("code") or "response_failed")
        elif event.name == "error":
            error = data.get("error")
            if not isinstance(error, dict):
                error = data
            self.status, self.error_code = 502, str(error.get("code") or "upstream_error")
        elif event.name == "response.incomplete":
            self.error_code = "incomplete"


# Takes each piece of the stream: its SSE bytes (for pass-through) and the complete events in it.
Consumer = Callable[[bytes, list[SSEEvent]], Awaitable[None]]


async def drain(opened: OpenedStream, outcome: Outcome, consume: Consumer) -> bool:
    """Feed `consume` what was read while opening, then the rest of the stream as it arrives, noting every
    event on `outcome` first. True when the terminal event came; otherwise (the upstream went away, or
    the server cut the stream) the outcome is marked incomplete and the caller tells its client."""
    for event in opened.events:
        outcome.observe(event)
    await consume(opened.buffered, opened.events)
    try:
        async for chunk, events in opened.stream.chunks():
            for event in events:
                outcome.observe(event)
            await consume(chunk, events)
    except (aiohttp.ClientError, TimeoutError) as exc:  # reported as an incomplete stream
        log.info("upstream stream broke account=%d error=%r", opened.account.id, exc)
    if outcome.terminal_seen:
        return True
    outcome.status, outcome.error_code = 502, outcome.cut_reason or STREAM_INCOMPLETE
    return False
