"""`codex-lb demo` (what scripts/demo runs): it starts, what it prints works verbatim, Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import orjson
import pytest

from tests.support.live_server import ROOT, free_port
from tests.support.polling import eventually_sync

pytestmark = pytest.mark.slow

READY_LINE = "Ctrl-C stops the demo, its server and the fake backend."


class DemoRun:
    """The demo as a user runs it in a terminal: output read as it comes, Ctrl-C at the end."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_LB_")}
        env["CODEX_LB_DATA_DIR"] = "/nonexistent/must-not-be-used"  # the demo ignores the caller's set-up
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "demo", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, line: str, timeout: float = 90) -> str:
        def lines() -> list[str]:
            assert self.proc.poll() is None, "demo exited:\n" + "\n".join(self.lines[-40:])
            return self.lines[-40:]

        eventually_sync(lines, lambda _: line in self.lines, timeout=timeout, interval=0.1, what=f"{line!r}")
        return "\n".join(self.lines)

    def block(self, header: str) -> str:
        """The indented lines under a header line of the guide, dedented."""
        start = next(i for i, line in enumerate(self.lines) if line.strip().startswith(header)) + 1
        block = []
        for line in self.lines[start:]:
            if not line.startswith("    "):
                break
            block.append(line)
        return textwrap.dedent("\n".join(block))

    def interrupt(self, timeout: float = 40) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _run(command: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_LB_")}
    return subprocess.run(
        ["bash", "-c", command], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_demo_serves_what_it_prints_and_ctrl_c_stops_everything():
    demo = DemoRun()
    try:
        output = demo.wait_for(READY_LINE)
        data_dir = Path(re.search(r"Data dir: +(\S+)", output).group(1))
        assert data_dir.is_dir() and str(data_dir) != "/nonexistent/must-not-be-used"
        assert f"Dashboard:   http://127.0.0.1:{demo.port}/" in output
        assert "(plus, 12% of 5 h used)" in output and "(team, 91% of 5 h used)" in output
        children = _children(demo.proc.pid)
        assert len(children) == 2  # the fake backend and the server

        # The curl, verbatim: one request through the proxy to a fake account.
        answer = _run(demo.block("curl:"))
        assert answer.returncode == 0, answer.stderr
        reply = orjson.loads(answer.stdout)["choices"][0]["message"]["content"]
        assert reply.startswith("Hello from the codex-lb demo: fake account demo-")

        # The OpenAI SDK snippet, verbatim.
        sdk = subprocess.run(
            [sys.executable, "-c", demo.block("OpenAI SDK")], capture_output=True, text=True, timeout=60
        )
        assert sdk.returncode == 0, sdk.stderr
        assert sdk.stdout.startswith("Hello from the codex-lb demo")

        # The pool from the command line, as printed (three accounts, their plans).
        listing = _run(demo.block("The pool from the command line:").splitlines()[0])
        assert listing.returncode == 0, listing.stderr
        assert [line.split()[2] for line in listing.stdout.splitlines()] == ["plus", "pro", "team"]
    finally:
        code = demo.interrupt() if demo.proc.poll() is None else demo.proc.returncode
        demo.kill()
    assert code == 0, "\n".join(demo.lines[-30:])
    assert demo.lines[-1] == "demo: stopped; its data dir is deleted"
    assert not data_dir.exists()
    assert _pids_alive(children) == []


def test_demo_codex_config_works_with_the_codex_cli():
    from tests.clients.codex_cli import CodexNotInstalled, codex_binary

    try:
        binary = codex_binary()
    except CodexNotInstalled as exc:
        pytest.skip(str(exc))
    demo = DemoRun("--traffic")
    try:
        output = demo.wait_for(READY_LINE)
        assert "Background traffic: a request every 2 s" in output
        command = demo.block("run it without touching your own ~/.codex:").replace("codex exec", "codex")
        home = re.search(r"CODEX_HOME=(\S+)", command).group(1)
        run = _run(
            f"{command.split(' codex ', 1)[0]} {binary} exec --skip-git-repo-check --json "
            "-c check_for_update_on_startup=false -c analytics.enabled=false 'Say hello'",
            HOME=home,
            NO_PROXY="127.0.0.1,localhost",
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert "Hello from the codex-lb demo" in run.stdout
    finally:
        code = demo.interrupt() if demo.proc.poll() is None else demo.proc.returncode
        demo.kill()
    assert code == 0
    assert re.fullmatch(r"demo: background traffic sent \d+ requests \(0 failed\)", demo.lines[-2])


def test_the_demo_puts_the_folder_holding_its_code_on_its_childrens_path(tmp_path):
    from server.demo.session import code_root

    assert code_root() == ROOT
    installed = tmp_path / "site-packages" / "server" / "demo" / "session.py"
    assert code_root(str(installed)) == tmp_path / "site-packages"  # a wheel: the fake ships inside it


def test_a_taken_port_is_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "demo", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"codex-lb demo: port {port} is in use: choose another --port, or leave it out "
        "(2455, or a free port when that is taken)\n"
    )
