"""Applies schema/migrations at start-up, exactly once across every worker and replica.

One raw DB-API connection takes a database-level lock (BEGIN IMMEDIATE on SQLite, a transaction-scoped
advisory lock on PostgreSQL), so concurrent starters queue and find the work done when their turn comes.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

import psycopg2

from schema.migrations import Migration, discover
from server.file_modes import create_owner_only_database
from server.settings.database_url import sqlite_path

log = logging.getLogger(__name__)

# An arbitrary constant: the advisory-lock id codex-lb's migrator uses on PostgreSQL.
_PG_MIGRATION_LOCK = 0x636F_6465_786C_62
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_ERRORS = (sqlite3.OperationalError, psycopg2.OperationalError)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer codex-lb; running older code against it could corrupt data."""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    before: int  # highest version recorded before this run
    after: int  # highest version known to this code
    applied: int  # steps this run applied


def connect(database_url: str):
    """A raw DB-API connection, outside Pony, for the migrator and readiness checks."""
    if database_url.startswith("sqlite:"):
        path = sqlite_path(database_url)
        create_owner_only_database(path)
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
        return conn
    return psycopg2.connect(database_url, connect_timeout=10)


def migrate(database_url: str) -> MigrationReport:
    migrations = discover()
    conn = connect(database_url)
    try:
        if database_url.startswith("sqlite:"):
            return _migrate_sqlite(conn, migrations)
        return _migrate_postgresql(conn, migrations)
    finally:
        conn.close()


def current_version(database_url: str) -> int:
    conn = connect(database_url)
    try:
        cur = conn.cursor()
        try:
            cur.execute("SELECT MAX(version) FROM schema_version")
        except (sqlite3.OperationalError, psycopg2.errors.UndefinedTable):
            return 0
        return cur.fetchone()[0] or 0
    finally:
        conn.close()


def _migrate_sqlite(conn: sqlite3.Connection, migrations: list[Migration]) -> MigrationReport:
    _enable_wal(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        report = _apply(conn.cursor(), "sqlite", migrations)
        conn.execute("COMMIT")
        return report
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching the journal mode can answer "database is locked" at once, without waiting out the busy
    # timeout, while another process holds the file (observed with six starters at once): retry it.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate_postgresql(conn, migrations: list[Migration]) -> MigrationReport:
    with conn:  # one transaction: commit on success, roll back on error
        cur = conn.cursor()
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
        return _apply(cur, "postgresql", migrations)


def _apply(cur, dialect: str, migrations: list[Migration]) -> MigrationReport:
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    cur.execute("SELECT version FROM schema_version")
    done = {row[0] for row in cur.fetchall()}
    before = max(done, default=0)
    latest = migrations[-1].version if migrations else 0
    if before > latest:
        raise SchemaTooNewError(
            f"the database schema is at version {before} but this codex-lb only knows versions up to "
            f"{latest}; upgrade codex-lb (or restore a backup made for this version)"
        )
    placeholder = "?" if dialect == "sqlite" else "%s"
    # Every step not yet recorded, not only those above the highest: branches developed side by side
    # may land a lower number after a higher one, and its step must still run.
    pending = [m for m in migrations if m.version not in done]
    for migration in pending:
        log.info("migration version=%d name=%s", migration.version, migration.name)
        for statement in migration.statements(dialect):
            cur.execute(statement)
        cur.execute(
            f"INSERT INTO schema_version (version, name, applied_at) "
            f"VALUES ({placeholder}, {placeholder}, {placeholder})",
            (migration.version, migration.name, time.time()),
        )
    return MigrationReport(before=before, after=latest, applied=len(pending))
