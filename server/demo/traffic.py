"""`--traffic`: a little background load through the demo (Responses, Chat Completions, the Codex
route), a request every couple of seconds, so the dashboard's numbers move."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging

import aiohttp

from server.demo.extras import DemoContext, DemoExtra

log = logging.getLogger(__name__)

PROMPTS = ("Explain rendezvous hashing in one line.", "Write a haiku about load balancers.", "Say hello.")
INTERVAL_S = 2.0


def requests_in_turn(model: str):
    """(path, body) pairs, cycling over the three client-facing routes."""
    for n, prompt in enumerate(itertools.cycle(PROMPTS)):
        route = n % 3
        if route == 0:
            yield "/v1/responses", {"model": model, "input": prompt}
        elif route == 1:
            yield "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": prompt}]}
        else:
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}
            body = {"model": model, "input": [item], "stream": True, "store": False}
            yield "/backend-api/codex/responses", body


class Traffic(DemoExtra):
    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.sent = 0
        self.failed = 0

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--traffic", action="store_true", help="send a request every couple of seconds in the background"
        )

    def wanted(self, args: argparse.Namespace) -> bool:
        return args.traffic

    async def after_server(self, ctx: DemoContext, args: argparse.Namespace) -> None:
        self.task = asyncio.create_task(self._run(ctx.url, args.model), name="demo-traffic")

    def guide(self, ctx: DemoContext, args: argparse.Namespace) -> list[str]:
        return [f"Background traffic: a request every {INTERVAL_S:g} s (Responses, Chat Completions, Codex)."]

    async def _run(self, url: str, model: str) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for path, body in requests_in_turn(model):
                try:
                    async with session.post(url + path, json=body) as response:
                        await response.read()
                        self.failed += response.status != 200
                except aiohttp.ClientError as exc:
                    log.debug("demo traffic request failed error=%s", type(exc).__name__)
                    self.failed += 1
                self.sent += 1
                await asyncio.sleep(INTERVAL_S)

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        print(f"demo: background traffic sent {self.sent} requests ({self.failed} failed)", flush=True)
