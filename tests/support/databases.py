"""Test databases: a SQLite file or a PostgreSQL database of its own for each test, already migrated
(copied from a template migrated once per process) or, for the tests of migrating, empty.

PostgreSQL comes from CODEX_LB_TEST_DATABASE_URL (default: the local trust-auth server, database
`test`). Without it tests skip locally, but with CI=true an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from server.runtime import migrator

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("CODEX_LB_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)


def require_postgres() -> None:
    try:
        psycopg2.connect(postgres_base_url(), connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL at {postgres_base_url()} is unreachable: {exc}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: database tests must run on PostgreSQL)", pytrace=False)
        pytest.skip(message)


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """An empty schema of the `test` database, for tests that migrate or that start real servers."""
    require_postgres()
    schema = f"clb_test_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    conn = psycopg2.connect(base)
    conn.autocommit = True
    try:
        conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        conn.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


class _MigratedTemplates:
    """A database migrated once per test process, copied for each test that wants a migrated one.

    Migrating costs 0.4-1 s on PostgreSQL and 40-100 ms on SQLite; a copy costs 50-80 ms
    (CREATE DATABASE … TEMPLATE) and about a millisecond (a file copy). The app then finds its schema
    current, as it does on every start but the first. Copies are dropped in the background, and the
    templates when the process exits.
    """

    def __init__(self) -> None:
        self._sqlite: Path | None = None
        self._postgres: str | None = None
        self._admin = None
        self._drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-db")
        atexit.register(self.close)

    def sqlite_copy(self, directory: Path) -> str:
        if self._sqlite is None:
            template = Path(tempfile.mkdtemp(prefix="clb-template-")) / "store.db"
            migrator.migrate(f"sqlite:///{template}")
            self._sqlite = template
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "store.db"
        shutil.copyfile(self._sqlite, target)
        target.chmod(0o600)
        return f"sqlite:///{target}"

    @contextmanager
    def postgres_copy(self) -> Iterator[str]:
        require_postgres()
        admin = self._admin_connection()
        if self._postgres is None:
            name = _database_name("clb_template")
            admin.cursor().execute(f'CREATE DATABASE "{name}"')
            migrator.migrate(_with_database(postgres_base_url(), name))
            self._postgres = name
        name = _database_name("clb_test")
        admin.cursor().execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._postgres}"')
        try:
            yield _with_database(postgres_base_url(), name)
        finally:
            self._drops.submit(self._drop, name)

    def _admin_connection(self):
        if self._admin is None or self._admin.closed:
            self._admin = psycopg2.connect(postgres_base_url())
            self._admin.autocommit = True
        return self._admin

    def _drop(self, name: str) -> None:
        conn = psycopg2.connect(postgres_base_url())
        conn.autocommit = True
        try:
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def close(self) -> None:
        self._drops.shutdown(wait=True)
        if self._postgres is not None:
            self._drop(self._postgres)
            self._postgres = None
        if self._admin is not None:
            self._admin.close()
        if self._sqlite is not None:
            shutil.rmtree(self._sqlite.parent, ignore_errors=True)


_templates = _MigratedTemplates()


def _database_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def database_url_for(kind: str, directory: Path, migrated: bool = True) -> Iterator[str]:
    """A database of its own for one test: migrated (a copy of the template) unless told otherwise."""
    if kind == "sqlite":
        yield _templates.sqlite_copy(directory) if migrated else f"sqlite:///{directory / 'store.db'}"
    elif migrated:
        with _templates.postgres_copy() as url:
            yield url
    else:
        with fresh_postgres_schema() as url:
            yield url
