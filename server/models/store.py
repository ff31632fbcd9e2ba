"""The model catalog's rows in the database (table model_entry): the only writer and reader of them.
A sync replaces the whole catalog in one transaction and moves the change marker only when it changed."""

from __future__ import annotations

import time

import orjson
from pony import orm

from server.models.catalog import ModelRow
from server.runtime.change_marker import bump_roster_version


@orm.db_session
def load_rows(db: orm.Database) -> tuple[list[ModelRow], float]:
    rows = db.ModelEntry.select().order_by(db.ModelEntry.position)[:]
    synced_at = max((r.synced_at for r in rows), default=0.0)
    return [ModelRow(r.slug, orjson.loads(r.entry), tuple(orjson.loads(r.plans))) for r in rows], synced_at


@orm.db_session(retry=3)
def replace_rows(db: orm.Database, rows: list[ModelRow]) -> bool:
    """Store the synced catalog; True when it differs from what was stored (workers then reload)."""
    now = time.time()
    stored = {r.slug: r for r in db.ModelEntry.select()}
    wanted = {row.slug for row in rows}
    changed = False
    for slug, existing in stored.items():
        if slug not in wanted:
            existing.delete()
            changed = True
    for position, row in enumerate(rows):
        entry = orjson.dumps(row.entry, option=orjson.OPT_SORT_KEYS).decode()
        plans = orjson.dumps(sorted(row.plans)).decode()
        existing = stored.get(row.slug)
        if existing is None:
            db.ModelEntry(slug=row.slug, entry=entry, plans=plans, position=position, synced_at=now)
            changed = True
        elif (existing.entry, existing.plans, existing.position) != (entry, plans, position):
            existing.set(entry=entry, plans=plans, position=position, synced_at=now)
            changed = True
        else:
            existing.synced_at = now
    if changed:
        bump_roster_version(db)
    return changed
