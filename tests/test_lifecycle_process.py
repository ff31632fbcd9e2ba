"""The server as a process under a stop: SIGTERM at any moment of its life ends it, promptly."""

from __future__ import annotations

import os
import signal
import time

import aiohttp
import pytest

from tests.support.live_server import ServerProcess
from tests.support.polling import eventually

pytestmark = pytest.mark.slow


async def _until_output(server: ServerProcess, text: str, timeout: float = 30.0) -> None:
    def output() -> str:
        assert server.proc.poll() is None, server.output()[-3000:]
        return server.output()

    await eventually(
        output, lambda seen: text in seen, timeout=timeout, interval=0.02, what=f"{text!r} logged"
    )


def _stop_timed(server: ServerProcess) -> tuple[int, float]:
    started = time.monotonic()
    code = server.stop(timeout=15)
    return code, time.monotonic() - started


async def test_sigterm_while_workers_start_stops_the_server(tmp_path):
    """Sanic's own main process waited forever here for acknowledgements from workers it had stopped."""
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(tmp_path)}, workers=2)
    server.start(tmp_path / "server.log")
    await _until_output(server, "Starting worker")  # a worker is up, not yet acknowledged
    code, took = _stop_timed(server)
    assert code == 0, server.output()[-3000:]
    assert took < 10, server.output()[-3000:]


async def test_sigterm_as_the_first_worker_answers_stops_the_server(tmp_path):
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(tmp_path)}, workers=2)
    server.start(tmp_path / "server.log")
    await server.wait_ready()  # the other worker may still be starting
    code, took = _stop_timed(server)
    assert code == 0, server.output()[-3000:]
    assert took < 10, server.output()[-3000:]
    assert "stopping (drain up to" in server.output()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


async def test_workers_stop_when_the_main_process_is_killed(tmp_path):
    """A main process killed outright (SIGKILL, OOM) must not leave workers serving an orphaned port."""
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(tmp_path)}, workers=2)
    server.start(tmp_path / "server.log")
    await server.wait_ready()
    pids: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ask() -> set[int]:
            async with session.get(server.url + "/health/live") as answer:
                pids.add((await answer.json())["worker"])
            return pids

        await eventually(ask, lambda pids: len(pids) >= 2, timeout=30, interval=0, what="both workers answer")
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    await eventually(
        lambda: {pid for pid in pids if _running(pid)}, lambda running: not running, timeout=10, interval=0.1
    )
    assert "stopping: main process gone" in server.output()
