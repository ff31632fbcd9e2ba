"""Pony entities: the shape of every table, defined once.

Tables are created by the numbered migrations in schema/migrations, never by Pony; Pony only checks at
bind time that the tables it maps exist. Times are epoch seconds (float) to stay portable.
"""

from __future__ import annotations

from pony import orm


def define_database() -> orm.Database:
    db = orm.Database()

    class Lease(db.Entity):
        _table_ = "lease"
        name = orm.PrimaryKey(str)
        holder = orm.Required(str)
        fencing_token = orm.Required(int, size=64)
        expires_at = orm.Required(float)

    class ChangeMarker(db.Entity):
        """Bumped whenever accounts, keys or settings change; replicas poll it to know when to reload."""

        _table_ = "change_marker"
        name = orm.PrimaryKey(str)
        version = orm.Required(int, size=64)

    return db
