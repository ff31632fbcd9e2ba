"""Test databases: a fresh SQLite file or a fresh PostgreSQL schema for each test.

PostgreSQL comes from CODEX_LB_TEST_DATABASE_URL (default: the local trust-auth server, database
`test`). Without it tests skip locally, but with CI=true an unreachable PostgreSQL fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

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


@contextmanager
def database_url_for(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'store.db'}"
    else:
        with fresh_postgres_schema() as url:
            yield url
