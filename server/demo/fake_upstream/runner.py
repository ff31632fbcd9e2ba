"""Ways to run the fake upstream for a test: in this process on a background thread, or as a subprocess.
Owns their start-up (free loopback port, readiness with a deadline) and clean shutdown."""

from __future__ import annotations

import asyncio
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .app import create_app, start
from .control import FakeUpstreamControl
from .state import FakeState

CODE_ROOT = Path(__file__).resolve().parents[3]  # holds the `server` package: the child's cwd
_START_TIMEOUT_S = 20


class ThreadedFakeUpstream(FakeUpstreamControl):
    """The fake on its own event loop in a daemon thread: usable from sync and async tests alike."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(f"http://{host}:{port}")
        self.host, self.port = host, port
        self.state = FakeState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> ThreadedFakeUpstream:
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("fake upstream did not start in time")
        if self._error is not None:
            raise RuntimeError("fake upstream failed to start") from self._error
        self.url = f"http://{self.host}:{self.port}"
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._runner, self.port = loop.run_until_complete(
                start(create_app(self.state), self.host, self.port)
            )
        except BaseException as exc:  # noqa: BLE001 (reported to the starting thread)
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT_S)
        self._loop = self._thread = None

    def __enter__(self) -> ThreadedFakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeUpstreamProcess(FakeUpstreamControl):
    """The fake as `python -m server.demo.fake_upstream` in a child process (as benchmarks and the demo run
    it)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        python: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        super().__init__(f"http://{host}:{port}")
        self.host, self.port = host, port
        self.python = python or sys.executable
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None
        self._stderr: tempfile._TemporaryFileWrapper | None = None  # type: ignore[name-defined]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> FakeUpstreamProcess:
        command = [
            self.python,
            "-m",
            "server.demo.fake_upstream",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # stderr goes to a file: a pipe nobody drains could block the fake mid-benchmark.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the child)
        self.process = subprocess.Popen(
            command, cwd=CODE_ROOT, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        line = self._first_line()
        if not line.startswith("fake-upstream listening on "):
            self.stop()
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _first_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.05):
                    return self.process.stdout.readline()
                if self.process.poll() is not None:
                    self._stderr.seek(0)
                    return self._stderr.read() or "exited"
        return "timed out"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
        self.process = None

    def __enter__(self) -> FakeUpstreamProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
