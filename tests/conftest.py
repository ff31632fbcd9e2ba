"""Shared fixtures: settings in a temporary data dir, databases (SQLite and PostgreSQL), live servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sanic import Sanic

from server.config import Settings
from tests.support.databases import database_url_for
from tests.support.live_server import free_port, serve_in_process

pytest_plugins = ["tests.fake_upstream.pytest_plugin"]

# Several apps per process, one per test: lift Sanic's unique-name registry.
Sanic.test_mode = True

DATABASE_KINDS = ["sqlite", "postgres"]


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request, tmp_path: Path):
    with database_url_for(request.param, tmp_path) as url:
        yield url


def make_settings(data_dir: Path, database_url: str | None = None, **environ: str) -> Settings:
    env = {"CODEX_LB_DATA_DIR": str(data_dir)}
    if database_url:
        env["CODEX_LB_DATABASE_URL"] = database_url
    env.update({f"CODEX_LB_{k.upper()}": v for k, v in environ.items()})
    return Settings.load(env, cwd=data_dir)


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
    from tests.support.proxy import ProxyHarness

    settings = make_settings(
        tmp_path / "data",
        database_url,
        upstream_base_url=fake_upstream.base_url,
        auth_base_url=fake_upstream.auth_url,
        oauth_callback_host="127.0.0.1",
        oauth_callback_port=str(free_port()),  # never the real 1455: tests run side by side
    )
    async with serve_in_process(settings) as server:
        yield ProxyHarness(server=server, fake=fake_upstream, settings=settings)
