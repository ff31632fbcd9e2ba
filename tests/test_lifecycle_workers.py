"""A worker that dies is replaced, and what it held (in-flight counts, leases) is given back."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time

import aiohttp
import pytest

from server.lifecycle import supervisor
from tests.support.live_server import ServerProcess
from tests.support.polling import eventually
from tests.test_lifecycle_drain import Streams, server_env, start_with_accounts

pytestmark = pytest.mark.slow


async def live_pids(url: str, want: int, timeout: float = 30.0) -> set[int]:
    seen: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ask() -> set[int]:
            try:
                async with session.get(url + "/health/live") as answer:
                    seen.add((await answer.json())["worker"])
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
            return seen

        return await eventually(ask, lambda seen: len(seen) >= want, timeout=timeout, interval=0)


async def accounts_in_flight(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + "/api/accounts") as answer:
        return sum(account["live"]["in_flight"] for account in (await answer.json())["accounts"])


async def test_a_killed_worker_is_replaced_and_its_in_flight_share_and_leases_reclaimed(
    tmp_path, fake_upstream
):
    server = ServerProcess(server_env(tmp_path, fake_upstream), workers=2)
    try:
        await start_with_accounts(server, tmp_path, accounts=1)
        before = await live_pids(server.url, want=2)
        victim = min(before)
        await fake_upstream.configure(defaults={"deltas": 16, "delta_interval_ms": 250})  # ~4 s per stream
        connector = aiohttp.TCPConnector(limit=0, force_close=True)  # spread over both workers
        async with aiohttp.ClientSession(connector=connector) as session:
            streams = Streams(session, server.url, 12)
            await streams.all_streaming()
            assert await accounts_in_flight(server.url) == 12
            os.kill(victim, signal.SIGKILL)
            outcomes = await asyncio.gather(*streams.tasks, return_exceptions=True)
        broken = sum(1 for outcome in outcomes if isinstance(outcome, BaseException))
        finished = [o for o in outcomes if not isinstance(o, BaseException)]
        assert all(events[-1]["type"] == "response.completed" for events in finished)
        # The survivors' streams ended normally; the dead worker's share was given back, not leaked.
        # The main process gives it back when its monitor sees the death, which can come after every
        # stream has returned (when the kernel put all twelve on the victim, they break at once).
        await eventually(lambda: accounts_in_flight(server.url), lambda count: count == 0, timeout=15)
        after = await live_pids(server.url, want=2)
        assert victim not in after and len(after) == 2  # a replacement serves
        output = server.output()
        assert f"pid={victim} died (exit code -9); restarting it" in output
        assert f"pid={victim} in_flight={broken}" in output, output[-3000:]
        conn = sqlite3.connect(server.env["CODEX_LB_DATA_DIR"] + "/store.db")
        try:
            held = conn.execute(
                "SELECT COUNT(*) FROM lease WHERE holder LIKE ? AND expires_at > ?",
                (f"{socket.gethostname()}:{victim}:%", time.time()),
            ).fetchone()[0]
        finally:
            conn.close()
        assert held == 0
    finally:
        assert server.stop() == 0, server.output()[-3000:]


class _DeadProcess:
    """What the supervisor sees of a worker process that has died."""

    def __init__(self, name: str, pid: int) -> None:
        self.name, self.pid, self.exitcode = name, pid, -9
        self.state = supervisor.ProcessState.FAILED
        self.restarts = 0

    def is_alive(self) -> bool:
        return False

    def restart(self) -> None:
        self.restarts += 1


def test_workers_that_keep_dying_stop_the_server_instead_of_holding_the_port():
    """After RESTARTS_ALLOWED deaths within the window the main process stops (exit status 1), which
    closes the port: a crash loop must not leave a port open that answers nothing."""
    dead = _DeadProcess("Sanic-Server-0-0", 4242)
    reclaimed: list[tuple[int, int]] = []
    manager = object.__new__(supervisor.Supervisor)
    manager._stop_at, manager._failed, manager._deaths = None, False, supervisor.deque()
    manager._server_processes = lambda: [dead]
    manager._begin_stop = lambda: setattr(manager, "_stop_at", time.monotonic())
    supervisor.hooks.on_worker_death.append(lambda worker, pid: reclaimed.append((worker, pid)))
    try:
        for _ in range(supervisor.RESTARTS_ALLOWED + 1):
            manager._replace_dead_workers()
    finally:
        supervisor.hooks.on_worker_death.pop()
    assert dead.restarts == supervisor.RESTARTS_ALLOWED
    assert manager._failed and manager._stop_at is not None
    assert reclaimed == [(0, 4242)] * (supervisor.RESTARTS_ALLOWED + 1)


def test_worker_numbers_are_read_from_sanic_process_names():
    assert supervisor.worker_index("Sanic-Server-0-0") == 0
    assert supervisor.worker_index("Sanic-Server-12-0") == 12
    assert supervisor.worker_index("Sanic-Inspector-0") is None
    assert supervisor.worker_index("") is None


def test_the_sanic_worker_manager_still_has_what_the_supervisor_builds_on():
    """The supervisor subclasses Sanic's WorkerManager (25.12) and uses some of its internals: an
    upgrade of Sanic that moves them fails here, not in a production stop."""
    import sanic.mixins.startup
    from sanic.worker.manager import WorkerManager
    from sanic.worker.process import WorkerProcess

    for name in ("_poll_monitor", "_sync_states", "_cleanup_non_tracked_workers", "_all_workers_ack"):
        assert callable(getattr(WorkerManager, name)), name
    for name in ("restart", "is_alive", "pid", "exitcode", "set_state"):
        assert hasattr(WorkerProcess, name), name
    assert hasattr(sanic.mixins.startup, "WorkerManager")  # the name serve() builds its manager from
    assert WorkerProcess.SERVER_LABEL == "Server"
