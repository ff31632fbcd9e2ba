"""One worker's in-memory roster: every account with its current access token, ready for routing.

The proxy reads it without touching the database; server.sync.reloader reloads it when accounts change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from server.accounts import store
from server.accounts.upkeep import apply_stored_usage
from server.balancer.candidates import Candidate
from server.balancer.slots import AccountSlots
from server.db import Database
from server.runtime.secretbox import SecretBox

log = logging.getLogger(__name__)
# A usage re-read also takes the polls this long before the latest one it has seen: two polls stored
# at once (an operator's poll beside the job's tick) may commit out of their order.
USAGE_OVERLAP_S = 5.0


class Roster:
    def __init__(self, db: Database, box: SecretBox, slots: AccountSlots) -> None:
        self._db = db
        self._box = box
        self._slots = slots
        self._by_id: dict[int, store.AccountRecord] = {}
        self._usage_seen: dict[int, float] = {}  # account id -> polled_at already put into the slots
        self._latest_poll = 0.0  # the latest polled_at among them
        self._opened: dict[str, str] = {}  # sealed access token -> token, so a reload decrypts only news
        self._all: dict[int, store.AccountRecord] = {}  # every account, in id order (some may lie beyond
        self._version = -1  # capacity); the change marker's version at the last reload (-1: never)
        self.candidates: tuple[Candidate, ...] = ()

    def get(self, account_id: int) -> store.AccountRecord | None:
        return self._by_id.get(account_id)

    def account_of(self, candidate: Candidate) -> store.AccountRecord:
        """The record of one of `candidates` (the two are installed together, so it is there)."""
        return self._by_id[candidate.account_id]

    @property
    def accounts(self) -> list[store.AccountRecord]:
        return list(self._by_id.values())

    async def reload(self) -> None:
        """Read the accounts changed since the last reload and merge them in; read them all the first
        time, after a deletion, and when the remembered tokens outgrow the pool (refreshes leave old ones)."""
        whole = self._version < 0 or len(self._opened) > 2 * len(self._all) + 16
        since = -1 if whole else self._version
        changes = await self._db.run(store.load_roster_changes, self._box, self._opened, since)
        merged = {} if whole else dict(self._all)
        merged.update((r.id, r) for r in changes.records)  # new accounts have the highest ids: order holds
        if len(merged) != changes.count and not whole:  # an account was deleted
            changes = await self._db.run(store.load_roster_changes, self._box, self._opened, -1)
            merged = {r.id: r for r in changes.records}
        self._all, self._version = merged, changes.version
        self._install(list(merged.values()))

    async def reload_usage(self) -> None:
        """A usage poll that changed no account's state (no version bump, server.sync.reloader): take the
        snapshots polled since the latest one seen into the records and, once each, into the slots."""
        polled = await self._db.run(store.polled_since, self._latest_poll - USAGE_OVERLAP_S)
        fresh = []
        for snapshot in polled:
            record = self._all.get(snapshot.id)
            if record is None or record.usage_polled_at >= snapshot.usage_polled_at:
                continue
            record = replace(
                record, usage_snapshot=snapshot.usage_snapshot, usage_polled_at=snapshot.usage_polled_at
            )
            self._all[record.id] = record
            if record.id in self._by_id:
                self._by_id[record.id] = record
                fresh.append(record)
        self._sync_polled_usage(fresh)

    def _install(self, records: list[store.AccountRecord]) -> None:
        records = self._within_capacity(records)
        self._by_id = {record.id: record for record in records}
        self._sync_polled_usage(records)
        for gone in self._usage_seen.keys() - self._by_id.keys():
            del self._usage_seen[gone]
        # Unchanged accounts keep their Candidate (its rendezvous salt is a hash worth not redoing).
        known = {
            (c.account_id, c.slot, c.status, c.plan_type, c.status_until, c.policy, c.reserve_percent): c
            for c in self.candidates
        }
        self.candidates = tuple(
            known.get(_identity(r))
            or Candidate(
                account_id=r.id,
                slot=r.slot,
                status=r.status,
                plan_type=r.plan_type,
                status_until=r.status_until,
                policy=r.routing_policy,
                reserve_percent=r.reserve_percent,
            )
            for r in records
        )

    def _within_capacity(self, records: list[store.AccountRecord]) -> list[store.AccountRecord]:
        """Accounts whose slot lies beyond the slot table (CODEX_LB_MAX_ACCOUNTS lowered below the
        pool) cannot be routed to: leave them out, and say so once per reload."""
        capacity = self._slots.capacity
        kept = [r for r in records if r.slot < capacity]
        if len(kept) < len(records):
            log.warning(
                "accounts beyond the slot table skipped=%d max_accounts=%d",
                len(records) - len(kept),
                capacity,
            )
        return kept

    def _sync_polled_usage(self, records: list[store.AccountRecord]) -> None:
        """Windows polled by the deployment's one usage poller (maybe on another replica) reach this
        host's slots through the database; each poll is applied once, not over fresher live headers."""
        now = time.time()
        for r in records:
            if r.usage_polled_at > self._usage_seen.get(r.id, 0.0):
                self._usage_seen[r.id] = r.usage_polled_at
                self._latest_poll = max(self._latest_poll, r.usage_polled_at)
                apply_stored_usage(self._slots, r.slot, r.status, r.usage_snapshot, now)

    def update_access_token(self, account_id: int, access_token: str) -> None:
        """After a refresh in this worker: use the new token at once, before the reload arrives."""
        record = self._by_id.get(account_id)
        if record is not None:
            self._by_id[account_id] = replace(record, access_token=access_token)

    def note_status(self, account_id: int, status: str) -> None:
        """A state this worker just wrote to the database (a lost login): route by it at once, not
        only after the reload it triggers."""
        record = self._by_id.get(account_id)
        if record is None or record.status == status:
            return
        self._by_id[account_id] = replace(record, status=status)
        self.candidates = tuple(
            replace(c, status=status) if c.account_id == account_id else c for c in self.candidates
        )

    def changed(self) -> None:
        """This worker changed accounts: tell the other workers of this host."""
        self._slots.bump_generation()


def _identity(r: store.AccountRecord) -> tuple:
    """What a Candidate is made of: a record that matches an existing one keeps it."""
    return (r.id, r.slot, r.status, r.plan_type, r.status_until, r.routing_policy, r.reserve_percent)
