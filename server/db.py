"""The async/database boundary: binds the Pony schema and runs @db_session functions in a thread pool.

Pony is synchronous and binds a session to a thread, so async code never touches it directly: it calls
`await db.run(fn, *args)`, which runs `fn(orm, *args)` on a bounded pool and hands back plain data.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pony import orm

from schema import define_database
from server.config import Settings
from server.runtime import migrator
from server.settings.database_url import sqlite_path

T = TypeVar("T")


class Database:
    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        # New accounts get a slot below this (server.accounts.store.PoolFull beyond it).
        self.account_capacity = settings.max_accounts
        self.orm: orm.Database = define_database()
        self._pool = ThreadPoolExecutor(max_workers=settings.db_threads, thread_name_prefix="db")

    def open(self) -> migrator.MigrationReport:
        """Migrate (under the cross-process lock) and bind. Synchronous: call it from a thread."""
        report = migrator.migrate(self.url)
        if self.url.startswith("sqlite:"):
            self.orm.bind(
                provider="sqlite",
                filename=str(sqlite_path(self.url)),
                create_db=True,
                timeout=migrator.SQLITE_BUSY_TIMEOUT_S,
            )
        else:
            self.orm.bind(provider="postgres", dsn=self.url)
        self.orm.generate_mapping(create_tables=False, check_tables=True)
        return report

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, self.orm, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self.orm.provider is not None:
            self.orm.disconnect()


@orm.db_session
def ping(db: orm.Database) -> int:
    """The applied schema version, proving the database answers."""
    return db.select("SELECT MAX(version) FROM schema_version")[0] or 0
