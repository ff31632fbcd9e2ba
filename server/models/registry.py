"""Each worker's copy of the model catalog, read on the hot path without touching the database.
Reloaded by the change watcher; the bundled list stands in until a sync has stored a catalog."""

from __future__ import annotations

from server.db import Database
from server.models import store
from server.models.bundled import bundled_catalog
from server.models.catalog import Catalog


class ModelRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.current: Catalog = bundled_catalog()

    async def reload(self) -> None:
        rows, synced_at = await self._db.run(store.load_rows)
        self.current = Catalog(tuple(rows), "synced", synced_at) if rows else bundled_catalog()
