"""`--history [ROWS]`: a month of realistic request history (a million rows unless told) written into the
demo's database before the server starts, with three API keys to own part of it, so the overview, request
logs, usage and sessions pages have something to show."""

from __future__ import annotations

import argparse
import asyncio
import time

from server.db import Database
from server.demo.extras import DemoContext, DemoExtra
from server.keys import store
from server.keys.spec import KeySpec
from server.usage import history

DEFAULT_ROWS = 1_000_000
KEYS = (
    {"name": "ci-bots", "limits": [{"quantity": "requests", "window": "day", "max": 2000}]},
    {"name": "alice-laptop", "limits": [{"quantity": "cost_usd", "window": "week", "max": 150}]},
    {"name": "team-shared", "limits": [{"quantity": "tokens", "window": "day", "max": 40_000_000}]},
)


def _fill(ctx: DemoContext, rows: int) -> tuple[int, float]:
    db = Database(ctx.settings)
    db.open()
    try:
        started = time.monotonic()
        key_ids = tuple(store.create(db.orm, KeySpec.parse(spec, creating=True))[0].id for spec in KEYS)
        # The demo's three accounts are imported next, into a fresh database: they get ids 1, 2 and 3.
        spec = history.HistorySpec(rows=rows, days=30, account_ids=(1, 2, 3), api_key_ids=key_ids)
        written = history.fill(db.orm, spec)
        return written, time.monotonic() - started
    finally:
        db.close()


class History(DemoExtra):
    def __init__(self) -> None:
        self.written = 0
        self.seconds = 0.0

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--history",
            nargs="?",
            type=int,
            const=DEFAULT_ROWS,
            metavar="ROWS",
            help=f"fill the request log with a month of history first ({DEFAULT_ROWS:,} rows unless given)",
        )

    def wanted(self, args: argparse.Namespace) -> bool:
        return bool(args.history)

    async def before_server(self, ctx: DemoContext, args: argparse.Namespace) -> None:
        print(f"demo: writing {args.history:,} request-log rows of history (30 days)…", flush=True)
        self.written, self.seconds = await asyncio.to_thread(_fill, ctx, args.history)

    def guide(self, ctx: DemoContext, args: argparse.Namespace) -> list[str]:
        return [
            f"History: {self.written:,} request-log rows over 30 days (written in {self.seconds:.0f} s), "
            "three API keys; see Overview, Request logs, Usage and Sessions."
        ]
