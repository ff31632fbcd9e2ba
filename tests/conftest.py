"""Shared fixtures: settings in a temporary data dir, databases (SQLite and PostgreSQL), live servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sanic import Sanic

from server.config import Settings
from tests.support import ast_turns
from tests.support.databases import database_url_for
from tests.support.live_server import serve_in_process
from tests.support.proxy import proxy_settings, serve_proxy
from tests.support.settings import make_settings

pytest_plugins = ["tests.support.fake_upstream_plugin"]

# Several apps per process, one per test: lift Sanic's unique-name registry.
Sanic.test_mode = True
# ...built on this thread while the fake upstream's thread may format a traceback: both use `ast`.
ast_turns.install()

DATABASE_KINDS = ["sqlite", "postgres"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Database fixtures run on both databases, or on those the module lists in DATABASES: modules
    whose subject runs no SQL of its own (streaming, translation, clients) say ["sqlite"]."""
    kinds = getattr(metafunc.module, "DATABASES", DATABASE_KINDS)
    chosen = {mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")}
    for name in ("database_url", "blank_database_url"):
        if name in metafunc.fixturenames and name not in chosen:
            metafunc.parametrize(name, kinds, indirect=True)


@pytest.fixture
def database_url(request, tmp_path: Path):
    """A migrated database of the test's own, as the app finds it on every start but the first."""
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def blank_database_url(request, tmp_path: Path):
    """An empty database, for the tests of migrating it."""
    with database_url_for(request.param, tmp_path, migrated=False) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
async def live_server(settings: Settings):
    async with serve_in_process(settings) as server:
        yield server


@pytest.fixture
async def proxy(tmp_path: Path, database_url: str, fake_upstream):
    """codex-lb on a real socket, its upstream and OAuth server being the fake."""
    async with serve_proxy(proxy_settings(tmp_path, database_url, fake_upstream), fake_upstream) as harness:
        yield harness
