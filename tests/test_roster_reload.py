"""A worker's roster reload reads only the accounts changed since its last one and opens only new or
changed tokens, and still serves every account's current state and token (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nacl.utils import random as random_bytes
from pony import orm

from server.accounts import store
from server.accounts.authjson import parse_auth_json
from server.accounts.roster import Roster
from server.balancer.slots import AccountSlots, SharedPrimitives
from server.db import Database
from server.demo.fake_upstream import mint_auth_json
from server.runtime import change_marker
from server.runtime.secretbox import SecretBox


class CountingBox(SecretBox):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.opened = 0

    def decrypt(self, ciphertext: str) -> str:
        self.opened += 1
        return super().decrypt(ciphertext)


@pytest.fixture
async def db(settings):
    database = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, database.open)
    yield database
    database.close()


async def _import(db: Database, box: SecretBox, account_id: str) -> store.AccountSummary:
    creds = parse_auth_json(orjson.dumps(mint_auth_json(account_id)))
    return (await db.run(store.upsert_credentials, creds, box)).account


async def test_a_reload_opens_only_what_changed(db):
    box = CountingBox(random_bytes(32))
    roster = Roster(db, box, AccountSlots(SharedPrimitives.create(capacity=16)))
    first = [await _import(db, box, f"acc_{n}") for n in range(5)]
    await roster.reload()
    assert box.opened == 5
    candidates = roster.candidates

    await _import(db, box, "acc_new")
    await roster.reload()
    assert box.opened == 6  # the new account's token only
    assert len(roster.accounts) == 6
    assert roster.candidates[:5] == candidates and roster.candidates[0] is candidates[0]

    old_token = roster.get(first[0].id).access_token
    await _import(db, box, "acc_0")  # new tokens for an account already in the pool
    await roster.reload()
    assert box.opened == 7
    fresh = roster.get(first[0].id).access_token
    assert fresh != old_token
    assert fresh == (await db.run(store.read_tokens, first[0].id, box)).access_token


async def test_a_reload_reads_only_the_accounts_changed_since_the_last(db):
    box = SecretBox(random_bytes(32))
    accounts = [await _import(db, box, f"acc_{n}") for n in range(5)]
    seen = await db.run(change_marker.roster_version)

    await db.run(store.set_status, accounts[2].id, "rate_limited", "429 from upstream", 0.0)
    await db.run(store.pause, accounts[4].id)
    changes = await db.run(store.load_roster_changes, box, {}, seen)
    assert [(r.id, r.status) for r in changes.records] == [
        (accounts[2].id, "rate_limited"),
        (accounts[4].id, "paused"),
    ]
    assert changes.count == 5

    @orm.db_session
    def bump_only(orm_db):  # a key or a setting changed: workers reload, no account was touched
        change_marker.bump_roster_version(orm_db)

    await db.run(bump_only)
    quiet = await db.run(store.load_roster_changes, box, {}, changes.version)
    assert quiet.records == [] and quiet.version == changes.version + 1


async def test_reloads_follow_imports_state_changes_and_deletions(db):
    box = SecretBox(random_bytes(32))
    roster = Roster(db, box, AccountSlots(SharedPrimitives.create(capacity=16)))
    accounts = [await _import(db, box, f"acc_{n}") for n in range(4)]
    await roster.reload()

    await db.run(store.pause, accounts[1].id)
    await db.run(store.delete_account, accounts[2].id)
    await _import(db, box, "acc_late")
    await roster.reload()
    whole = await db.run(store.load_roster_changes, box, {}, -1)
    assert roster.accounts == whole.records
    assert [c.account_id for c in roster.candidates] == [r.id for r in whole.records]
    assert roster.get(accounts[1].id).status == "paused" and roster.get(accounts[2].id) is None

    await db.run(store.resume, accounts[1].id)
    await roster.reload()
    assert roster.get(accounts[1].id).status == "active"
    assert len(roster.accounts) == 4
