"""The demo's two child processes, the fake backend and the server: start with a deadline, watch, and
stop in order. Each runs in its own session, so Ctrl-C reaches only the demo, which stops them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


class ChildFailed(RuntimeError):
    """A child did not start, or stopped on its own; the message says which and where its log is."""


class Child:
    def __init__(self, name: str, command: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.cwd, self.env, self.log = name, command, cwd, env, log
        self.proc: subprocess.Popen | None = None
        self.ready_at = 0.0

    def start(self) -> Child:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def failure(self, what: str) -> ChildFailed:
        return ChildFailed(f"the {self.name} {what} (log: {self.log}):\n{self.tail()}")

    async def wait_until(self, probe) -> None:
        """Poll `probe()` (an awaitable answering True when ready) until it holds or the child dies."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                raise self.failure(f"exited with status {self.proc.returncode} while starting")
            if await probe():
                self.ready_at = time.monotonic()
                return
            await asyncio.sleep(0.1)
        raise self.failure(f"did not start within {START_TIMEOUT_S} s")

    async def stop(self) -> None:
        if not self.running:
            return
        # Sanic's main process ignores a signal that lands while it still collects its workers' acks
        # (right after they are up): give that moment time to pass.
        settle = self.ready_at + 1.0 - time.monotonic()
        if settle > 0:
            await asyncio.sleep(settle)
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def fake_command(port: int) -> list[str]:
    return [sys.executable, "-m", "server.demo.fake_upstream", "--host", "127.0.0.1", "--port", str(port)]


def server_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "sanic", "server.app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


async def answers(url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            return response.status == 200
    except (TimeoutError, aiohttp.ClientError):
        return False
