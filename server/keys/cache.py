"""One worker's copy of every API key, looked up by the digest of the presented secret.

Read on the hot path without touching the database; server.sync.reloader reloads it when keys change. A key
the copy does not know is looked up in the database once before it is refused (a key created a moment
ago on another worker or replica works at once); digests the database did not know either are
remembered for a few seconds, so a flood of wrong keys costs one lookup each, not one per request.
"""

from __future__ import annotations

import asyncio
import time

from server.db import Database
from server.keys import secret, store
from server.keys.store import KeyRecord

UNKNOWN_TTL_S = 5.0
UNKNOWN_MAX = 10_000  # remembered wrong digests per worker; past that the memory starts over


class KeyCache:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[int, KeyRecord] = {}
        self._unknown: dict[str, float] = {}  # digest -> monotonic time until which it is refused as is
        self._looking: dict[str, asyncio.Future] = {}  # single flight per digest
        # Keys learned one by one, with the time their lookup began: a reload whose read began earlier
        # must not drop them (seen under load: a key learned between a reload's read and its install
        # was refused with 401 by the next lookup).
        self._learned: dict[str, tuple[float, KeyRecord]] = {}

    async def reload(self) -> None:
        started = time.monotonic()
        records = await self._db.run(store.load_keys)
        # Every change of the host reloads the keys: an unchanged key keeps its record, so what is
        # cached against it (its view of the pool, server.proxy.pool_views) stays warm.
        known = self._by_hash
        by_hash = {r.key_hash: known[r.key_hash] if known.get(r.key_hash) == r else r for r in records}
        for digest, (asked, record) in list(self._learned.items()):
            if asked < started:
                del self._learned[digest]  # the reload's read is as fresh: it decides
            elif digest not in by_hash:
                by_hash[digest] = record
        self._by_hash = by_hash
        self._by_id = {r.id: r for r in by_hash.values()}

    def lookup(self, presented: str) -> KeyRecord | None:
        return self._by_hash.get(secret.digest(presented))

    def get(self, key_id: int) -> KeyRecord | None:
        return self._by_id.get(key_id)

    async def learn(self, presented: str) -> None:
        """Before a key this copy does not know is refused: ask the database once, and keep the answer."""
        digest = secret.digest(presented)
        if digest in self._by_hash or self._unknown.get(digest, 0.0) > time.monotonic():
            return
        pending = self._looking.get(digest)
        asked = time.monotonic()
        if pending is None:
            pending = asyncio.ensure_future(self._db.run(store.load_key_by_hash, digest))
            self._looking[digest] = pending
            pending.add_done_callback(lambda _f: self._looking.pop(digest, None))
        record = await asyncio.shield(pending)
        if record is not None:
            self._by_hash[digest] = record
            self._by_id[record.id] = record
            self._learned[digest] = (asked, record)
            return
        if len(self._unknown) >= UNKNOWN_MAX:
            self._unknown.clear()
        self._unknown[digest] = time.monotonic() + UNKNOWN_TTL_S
