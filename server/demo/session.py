"""The demo from start to Ctrl-C: a throw-away data dir, the fake backend, the server wired to it
(nothing inherited from the caller's CODEX_LB_* variables), the accounts, the guide, the extras."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from server.config import PREFIX, Settings
from server.demo import guide, seed
from server.demo.extras import DemoContext, DemoExtra, registered
from server.demo.processes import Child, ChildFailed, answers, fake_command, server_command
from server.runtime import migrator

DEFAULT_PORT = 2455


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port for the demo server (default 2455, or a free one)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--model", default=guide.MODEL, help=f"model the examples use ({guide.MODEL})")
    parser.add_argument("--keep", action="store_true", help="keep the data dir when the demo stops")
    for extra in registered():
        extra.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    if args.port and free_port(args.port) != args.port:
        print(
            f"codex-lb demo: port {args.port} is in use: choose another --port, or leave it out "
            f"({DEFAULT_PORT}, or a free port when that is taken)",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(Demo(code_root(), args).run())


def code_root(module: str = __file__) -> Path:
    """The folder holding the `server` package (a clone, or site-packages), for the children's path."""
    return Path(module).resolve().parents[2]


def free_port(preferred: int | None = None) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root, self.args = root, args
        self.extras: list[DemoExtra] = [e for e in registered() if e.wanted(args)]
        self.children: list[Child] = []
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stopping.set)
        data_dir = Path(tempfile.mkdtemp(prefix="codex-lb-demo-"))
        keep = self.args.keep
        try:
            return await self._run(data_dir)
        except ChildFailed as exc:
            print(f"codex-lb demo: {exc}", file=sys.stderr, flush=True)
            keep = True  # the logs explain what went wrong
            return 1
        finally:
            for extra in self.extras:
                await extra.stop()
            for child in reversed(self.children):
                await child.stop()
            if keep:
                print(f"demo: stopped; data and logs kept in {data_dir}", flush=True)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
                print("demo: stopped; its data dir is deleted", flush=True)

    async def _run(self, data_dir: Path) -> int:
        port = self.args.port or free_port(DEFAULT_PORT)
        fake_port = free_port()
        fake_url = f"http://127.0.0.1:{fake_port}"
        env = self._server_env(data_dir, fake_url)
        ctx = DemoContext(self.root, data_dir, Settings.load(env, cwd=data_dir), fake_url)
        print(f"demo: starting the fake backend and codex-lb in {data_dir}", flush=True)

        fake = self._start("fake backend", fake_command(fake_port), data_dir / "fake-upstream.log", env)
        await asyncio.to_thread(migrator.migrate, ctx.settings.database_url)
        for extra in self.extras:
            await extra.before_server(ctx, self.args)
        await fake.wait_until(lambda: answers(fake_url + "/__health"))
        server = self._start("server", server_command(port, self.args.workers), data_dir / "server.log", env)
        ctx.url = f"http://127.0.0.1:{port}"
        await server.wait_until(lambda: answers(ctx.url + "/health/ready"))
        ctx.accounts = await seed.add_accounts(fake_url, ctx.url)
        for extra in self.extras:
            await extra.after_server(ctx, self.args)

        codex_home = guide.write_codex_home(ctx, self.args.model)
        extra_lines = [line for extra in self.extras for line in extra.guide(ctx, self.args)]
        print(guide.render(ctx, self.args.model, codex_home, extra_lines), flush=True)
        return await self._watch()

    def _start(self, name: str, command: list[str], log: Path, env: dict[str, str]) -> Child:
        # cwd is the data dir so that no .env.local of the clone leaks in; PYTHONPATH finds the code.
        child = Child(name, command, cwd=log.parent, env=env, log=log).start()
        self.children.append(child)
        return child

    def _server_env(self, data_dir: Path, fake_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(
            {
                PREFIX + "DATA_DIR": str(data_dir),
                PREFIX + "UPSTREAM_BASE_URL": fake_url + "/backend-api",
                PREFIX + "AUTH_BASE_URL": fake_url,
                # The browser sign-in listener would take 1455 from a real codex-lb on this machine.
                PREFIX + "OAUTH_CALLBACK_PORT": str(free_port()),
                # Fresh window percentages in the dashboard within seconds of the start.
                PREFIX + "USAGE_POLL_INTERVAL_SECONDS": "5",
                # Ctrl-C should not wait a minute for streams nobody watches.
                PREFIX + "SHUTDOWN_DRAIN_SECONDS": "3",
            }
        )
        return env

    async def _watch(self) -> int:
        """Until Ctrl-C; a child that stops on its own ends the demo with its log's tail."""
        while not self.stopping.is_set():
            for child in self.children:
                if not child.running:
                    raise child.failure(f"stopped unexpectedly with status {child.proc.returncode}")
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=0.5)
            except TimeoutError:
                pass
        print("\ndemo: stopping…", flush=True)
        return 0
