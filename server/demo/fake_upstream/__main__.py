"""Command line: `python -m server.demo.fake_upstream --port N [--host 127.0.0.1] [--config FILE]`.
Owns process life: prints `fake-upstream listening on http://HOST:PORT` once serving, stops on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import orjson

from .app import create_app, start
from .state import FakeState


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake-upstream", description="Fake ChatGPT backend + OAuth server.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--config", type=Path, help="JSON file with an initial /__config body")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    state = FakeState()
    if args.config:
        state.configure(orjson.loads(args.config.read_bytes()))
    runner, port = await start(create_app(state), args.host, args.port)
    print(f"fake-upstream listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    runner = uvloop.run if uvloop else asyncio.run
    try:
        runner(_serve(args))
    except ValueError as exc:
        print(f"fake-upstream: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
