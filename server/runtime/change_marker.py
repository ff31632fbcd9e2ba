"""The roster change marker: one version row that every worker and replica polls to learn that accounts,
keys or settings changed (and, beside it, the latest usage poll). Owns the `change_marker` row; every
module that writes such data bumps it."""

from __future__ import annotations

from pony import orm


def bump_roster_version(db: orm.Database) -> None:
    """Inside a db_session: tell every worker and replica that accounts changed."""
    db.execute("UPDATE change_marker SET version = version + 1 WHERE name = 'roster'")


@orm.db_session
def roster_version(db: orm.Database) -> int:
    return int(db.select("SELECT version FROM change_marker WHERE name = 'roster'")[0])


@orm.db_session
def marks(db: orm.Database) -> tuple[int, float]:
    """The roster version and the latest usage poll of any account. A poll that moves only an account's
    usage does not bump the version (a reload of everything in every worker): workers see it here and
    re-read only the polled usage."""
    row = db.select(
        "SELECT version, (SELECT MAX(usage_polled_at) FROM account) FROM change_marker WHERE name = 'roster'"
    )[0]
    return int(row[0]), float(row[1] or 0.0)
