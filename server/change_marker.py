"""The roster change marker: one version row that every worker and replica polls to learn that accounts,
keys or settings changed. Owns the `change_marker` row; every module that writes such data bumps it."""

from __future__ import annotations

from pony import orm


def bump_roster_version(db: orm.Database) -> None:
    """Inside a db_session: tell every worker and replica that accounts changed."""
    db.execute("UPDATE change_marker SET version = version + 1 WHERE name = 'roster'")


@orm.db_session
def roster_version(db: orm.Database) -> int:
    return int(db.select("SELECT version FROM change_marker WHERE name = 'roster'")[0])
