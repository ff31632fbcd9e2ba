"""A worker's stop: refuse new work at once, let streams and WebSocket turns finish, cut the rest cleanly.

Owns the in-flight registry (every proxied request or turn between its Settlement and `finish`) and
the registry of open client WebSockets. Runs in `before_server_stop`, before Sanic closes connections:
readiness turns false and new requests get 503 at once; idle client sockets are closed with 1012 so
the Codex CLI reconnects elsewhere; what still runs at the deadline ends with `response.failed`
(`server_shutting_down`) and is logged like any request; then after_server_stop flushes the log writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import weakref

import orjson
from sanic import Sanic
from sanic.response import raw

from server.upstream.events import CUT_CODE

log = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012
CUT_GRACE_S = 3.0  # after cutting: time for handlers to send response.failed and settle
STOP_POLL_S = 0.2
SIGNAL_LOST_AFTER_S = 1.0

_inflight: weakref.WeakSet = weakref.WeakSet()  # Settlements not yet finished, in this process
_sockets: weakref.WeakSet = weakref.WeakSet()  # open client WebSockets (ClientSocket), in this process
_watchers: set[asyncio.Event] = set()  # drains waiting for the registries to shrink


def track(settlement) -> None:
    _inflight.add(settlement)


def untrack(settlement) -> None:
    _inflight.discard(settlement)
    _notify()


def add_socket(client) -> None:
    _sockets.add(client)


def remove_socket(client) -> None:
    _sockets.discard(client)
    _notify()


def open_counts() -> tuple[int, int]:
    """Requests (and turns) in flight and client WebSockets open in this process (for /metrics)."""
    return len(_inflight), len(_sockets)


def _notify() -> None:
    for event in _watchers:
        event.set()


async def _wait_until(done, deadline: float) -> None:
    """Return when `done()` holds or at `deadline` (monotonic), waking whenever a registry shrinks."""
    changed = asyncio.Event()
    _watchers.add(changed)
    try:
        while not done() and time.monotonic() < deadline:
            changed.clear()
            try:
                # A turn that ends leaves its socket busy for a moment: look again at least every 0.2 s.
                await asyncio.wait_for(changed.wait(), min(0.2, max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                pass
    finally:
        _watchers.discard(changed)


def in_flight() -> int:
    return len(_inflight)


class Drain:
    """One app's drain state (on app.ctx.drain)."""

    def __init__(self, drain_s: float) -> None:
        self.drain_s = drain_s
        self.draining = False
        self.finished = 0
        self.cut = 0
        self._task: asyncio.Task | None = None

    async def run(self) -> None:
        # Sanic may start a shutdown listener twice (uvloop: the first run_until_complete after
        # loop.stop() fails with "Event loop stopped before Future completed"): one drain only.
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="drain")
        await asyncio.shield(self._task)

    async def _drain(self) -> None:
        self.draining = True
        started = time.monotonic()
        deadline = started + self.drain_s
        at_start = len(_inflight)
        log.info(
            "draining in_flight=%d client_sockets=%d deadline_s=%.0f", at_start, len(_sockets), self.drain_s
        )
        for client in list(_sockets):
            if client.idle:
                client.close_for_restart()
        await _wait_until(lambda: not _inflight and not _busy_sockets(), deadline)
        if _inflight:
            log.warning("drain deadline reached: cutting streams=%d", len(_inflight))
            await self._cut_all(time.monotonic() + CUT_GRACE_S)
        for client in list(_sockets):
            client.close_for_restart()
        self.finished = max(0, at_start - self.cut)
        log.info(
            "drained in_s=%.1f finished=%d cut=%d left=%d",
            time.monotonic() - started,
            self.finished,
            self.cut,
            len(_inflight),
        )

    async def _cut_all(self, until: float) -> None:
        """Cut every stream, again and again: one still choosing an account is cut once it opens."""
        done: set[int] = set()

        def cut_new() -> bool:
            for settlement in list(_inflight):
                if id(settlement) not in done and cut(settlement):
                    done.add(id(settlement))
            return not _inflight

        while not cut_new() and time.monotonic() < until:
            await _wait_until(lambda: not _inflight, min(until, time.monotonic() + 0.1))
        self.cut = len(done)


def _busy_sockets() -> bool:
    return any(not client.idle for client in list(_sockets))


def cut(settlement) -> bool:
    """End one in-flight stream now: its reader sees the upstream go away and sends response.failed.
    False while it has no upstream stream yet (still choosing an account)."""
    outcome = settlement.outcome
    if outcome is not None:
        outcome.cut_reason = CUT_CODE
    opened = settlement.opened
    if opened is None:
        return False
    opened.stream.cut()
    return True


def refusal(path: str):
    """The answer to a request that arrives while this worker drains (None: let it through)."""
    if path == "/health/live":
        return None
    if path == "/health/ready":
        body = {"status": "draining"}
    else:
        body = {
            "error": {
                "message": "This codex-lb instance is shutting down; retry the request.",
                "type": "server_error",
                "code": CUT_CODE,
            }
        }
    return raw(
        orjson.dumps(body),
        status=503,
        content_type="application/json",
        headers={"retry-after": "1", "connection": "close"},
    )


def install(app: Sanic, drain_s: float) -> None:
    """Listeners and middleware of the drain, and the watch that stops a worker whose main process
    asked it to (a shared flag: a signal can be lost in a start-up window, the flag cannot)."""
    app.ctx.drain = Drain(drain_s)
    if os.environ.get("SANIC_WORKER_NAME"):
        # A worker told to stop while it still starts (Sanic installs its handlers only once it
        # listens) exits at once and quietly, instead of a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, _exit_quietly)
    # Our own drain decides how long connections live; Sanic's wait after it is only a backstop.
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 5.0

    @app.on_request(priority=1000)
    async def refuse_while_draining(request):
        if request.app.ctx.drain.draining:
            return refusal(request.path)
        return None

    @app.after_server_start
    async def watch_for_stop(app: Sanic) -> None:
        app.ctx.drain.draining = False
        flag = getattr(app.shared_ctx, "stop_requested", None)
        if flag is not None and os.environ.get("SANIC_WORKER_PROCESS"):
            app.ctx.stop_watch = asyncio.create_task(_watch_for_stop(app, flag), name="stop-watch")

    @app.before_server_stop
    async def drain(app: Sanic) -> None:
        if os.environ.get("SANIC_WORKER_PROCESS"):
            # The main process owns the deadline (it kills us after it); a second SIGINT here would
            # raise KeyboardInterrupt in the middle of the drain, since Sanic removed its handlers.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        watch = getattr(app.ctx, "stop_watch", None)
        if watch is not None:
            watch.cancel()
        await app.ctx.drain.run()


def _exit_quietly(signum, frame) -> None:
    # Nothing to drain yet; an unwinding exit would wait for database threads still opening (seen:
    # a worker stopped during start-up kept its process alive until the main process gave up).
    os._exit(0)


async def _watch_for_stop(app: Sanic, flag) -> None:
    parent = os.getppid()
    seen = 0
    while True:
        await asyncio.sleep(STOP_POLL_S)
        orphaned = os.getppid() != parent  # the main process died without stopping us (SIGKILL)
        seen = seen + 1 if flag.value else 0
        # The main process also sends SIGINT, which starts the stop at once; the flag acts only if
        # that signal was lost (it landed while Sanic was installing its handlers).
        if orphaned or seen * STOP_POLL_S >= SIGNAL_LOST_AFTER_S:
            log.info("stopping: main process %s", "gone" if orphaned else "asked (signal lost)")
            app.stop(terminate=False)
            return
