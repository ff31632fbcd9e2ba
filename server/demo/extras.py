"""What an optional part of the demo plugs into: its command-line options, a step before the server
starts (the database exists and is migrated: bulk seeding goes here), a step once the server serves
(background work), its lines in the printed guide, and its clean-up on Ctrl-C.

A new part, e.g. `--history` (a million request-log rows): a module `server/demo/history.py` with a
`DemoExtra` subclass whose `add_arguments` adds the flag, `wanted` reads it, and `before_server` writes
the rows into `ctx.settings.database_url` (no server yet, so no writer to race); then one line in
`registered()` below. `traffic.py` is the worked example of an extra that runs alongside the server."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from server.config import Settings


@dataclass(frozen=True, slots=True)
class DemoAccount:
    account_id: str
    email: str
    plan_type: str
    primary_used_percent: int


@dataclass
class DemoContext:
    """Everything a part of the demo may use; `url` and `accounts` are set once the server serves."""

    root: Path  # the clone
    data_dir: Path
    settings: Settings  # what the demo's server runs with (its database, its data dir)
    fake_url: str
    url: str = ""
    accounts: list[DemoAccount] = field(default_factory=list)


class DemoExtra:
    """Override what the extra needs; every step defaults to doing nothing."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def wanted(self, args: argparse.Namespace) -> bool:
        return False

    async def before_server(self, ctx: DemoContext, args: argparse.Namespace) -> None:
        """The schema is migrated and the server is not running yet."""

    async def after_server(self, ctx: DemoContext, args: argparse.Namespace) -> None:
        """The server answers and the accounts are in; start background tasks here."""

    def guide(self, ctx: DemoContext, args: argparse.Namespace) -> list[str]:
        return []

    async def stop(self) -> None:
        """Ctrl-C: cancel what after_server started; may print one summary line."""


def registered() -> list[DemoExtra]:
    from server.demo.history import History
    from server.demo.traffic import Traffic

    return [Traffic(), History()]
