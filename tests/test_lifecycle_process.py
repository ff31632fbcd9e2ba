"""The server as a process under a stop: SIGTERM at any moment of its life ends it, promptly."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.live_server import ServerProcess

pytestmark = pytest.mark.slow


async def _until_output(server: ServerProcess, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert time.monotonic() < deadline, f"{text!r} not seen:\n{server.output()[-3000:]}"
        assert server.proc.poll() is None, server.output()[-3000:]
        await asyncio.sleep(0.02)


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
