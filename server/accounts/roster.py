"""One worker's in-memory roster: every account with its current access token, ready for routing.

The proxy reads it without touching the database. A watcher reloads it when this host's generation
counter moves (same-host change, instant) or the database change marker moves (another replica).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from server.accounts import store
from server.balancer.candidates import Candidate
from server.balancer.slots import AccountSlots
from server.db import Database
from server.secretbox import SecretBox

log = logging.getLogger(__name__)
GENERATION_POLL_S = 0.25
DATABASE_POLL_S = 1.5


class Roster:
    def __init__(self, db: Database, box: SecretBox, slots: AccountSlots) -> None:
        self._db = db
        self._box = box
        self._slots = slots
        self._by_id: dict[int, store.AccountRecord] = {}
        self.candidates: tuple[Candidate, ...] = ()
        self._generation = -1
        self._version = -1
        self._task: asyncio.Task | None = None

    def get(self, account_id: int) -> store.AccountRecord | None:
        return self._by_id.get(account_id)

    @property
    def accounts(self) -> list[store.AccountRecord]:
        return list(self._by_id.values())

    async def reload(self) -> None:
        generation = self._slots.generation
        version = await self._db.run(store.roster_version)
        records = await self._db.run(store.load_roster, self._box)
        self._install(records)
        self._generation, self._version = generation, version

    def _install(self, records: list[store.AccountRecord]) -> None:
        self._by_id = {record.id: record for record in records}
        self.candidates = tuple(
            Candidate(
                account_id=r.id,
                slot=r.slot,
                status=r.status,
                plan_type=r.plan_type,
                status_until=r.status_until,
            )
            for r in records
        )

    def update_access_token(self, account_id: int, access_token: str) -> None:
        """After a refresh in this worker: use the new token at once, before the reload arrives."""
        record = self._by_id.get(account_id)
        if record is not None:
            self._by_id[account_id] = replace(record, access_token=access_token)

    def changed(self) -> None:
        """This worker changed accounts: tell the other workers of this host."""
        self._slots.bump_generation()

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="roster-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _watch(self) -> None:
        since_db_check = 0.0
        while True:
            await asyncio.sleep(GENERATION_POLL_S)
            since_db_check += GENERATION_POLL_S
            try:
                if self._slots.generation != self._generation:
                    await self.reload()
                elif since_db_check >= DATABASE_POLL_S:
                    since_db_check = 0.0
                    if await self._db.run(store.roster_version) != self._version:
                        await self.reload()
            except Exception:  # the watcher must survive a database hiccup; the next poll retries
                log.exception("roster reload failed")
