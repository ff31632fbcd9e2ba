"""Servers for tests: the app in this process on a real socket, or `sanic server.app` as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sanic import Sanic

from server.app import create_app
from server.config import Settings
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    app: Sanic
    url: str


@asynccontextmanager
async def serve_in_process(settings: Settings, ssl=None) -> AsyncIterator[LiveServer]:
    """Run the real app on a real loopback socket inside the test's event loop (over TLS with `ssl`)."""
    app = create_app(settings)
    # Touch-up rewrites Sanic's request handling to skip unused signals, parsing its source with `ast`
    # at each start: 0.17 s of every in-process app, for a speed-up no test measures.
    app.config.TOUCHUP = False
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False, ssl=ssl
    )
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield LiveServer(app=app, url=f"{'https' if ssl else 'http'}://127.0.0.1:{port}")
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


class ServerProcess:
    """`python -m sanic server.app` in a subprocess, as a user starts it."""

    def __init__(self, env: dict[str, str], workers: int = 1, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {**os.environ, **env}
        self.log_path: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.ready_at = 0.0

    def start(self, log_path: Path) -> ServerProcess:
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "sanic",
            "server.app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    async def wait_ready(self, timeout: float = 30.0, every_worker: bool = False) -> None:
        """Until a worker answers /health/ready; with every_worker, until each of them has (fresh
        connections, which the kernel spreads over the workers)."""
        ready: set[int] = set()
        wanted = self.workers if every_worker else 1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

            async def readiness() -> int | str:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
                try:
                    async with session.get(self.url + "/health/ready") as response:
                        if response.status == 200:
                            ready.add((await response.json())["worker"])
                        return len(ready)
                except aiohttp.ClientError as exc:
                    return f"{exc!r}\n{self.output()[-3000:]}"

            await eventually(readiness, lambda count: count == wanted, timeout=timeout, interval=0.05)
        self.ready_at = time.monotonic()

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
