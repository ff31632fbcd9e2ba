"""A worker's roster reload after an import opens only the new or changed tokens, not every account's,
and still serves every account's current token (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nacl.utils import random as random_bytes

from server.accounts import store
from server.accounts.authjson import parse_auth_json
from server.accounts.roster import Roster
from server.balancer.slots import AccountSlots, SharedPrimitives
from server.db import Database
from server.secretbox import SecretBox
from tests.fake_upstream import mint_auth_json


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
