"""One worker's copy of every API key, looked up by the digest of the presented secret.

Read on the hot path without touching the database; server.reloader reloads it when keys change.
"""

from __future__ import annotations

from server.db import Database
from server.keys import secret, store
from server.keys.store import KeyRecord


class KeyCache:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[int, KeyRecord] = {}

    async def reload(self) -> None:
        records = await self._db.run(store.load_keys)
        self._by_hash = {r.key_hash: r for r in records}
        self._by_id = {r.id: r for r in records}

    def lookup(self, presented: str) -> KeyRecord | None:
        return self._by_hash.get(secret.digest(presented))

    def get(self, key_id: int) -> KeyRecord | None:
        return self._by_id.get(key_id)
