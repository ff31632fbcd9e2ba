"""The dashboard's files at /: SPA fallback for client routes, JSON 404 elsewhere, cache headers, gzip."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
import pytest

from server.edge.static_site import StaticSite
from tests.conftest import make_settings
from tests.support.live_server import serve_in_process

INDEX = b"<!doctype html><title>codex-lb</title><div id=app></div>" + b" " * 2000
SCRIPT = b"console.log('dashboard');" * 100


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (root / "favicon.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


@pytest.fixture
async def site(tmp_path: Path, build: Path):
    async with serve_in_process(make_settings(tmp_path / "data")) as server:
        server.app.ctx.static_site = StaticSite(build)
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            yield server.url, session


async def test_index_is_served_at_root_and_revalidated_every_time(site):
    url, session = site
    async with session.get(url + "/") as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"
        assert gzip.decompress(await response.read()) == INDEX
        etag = response.headers["etag"]
    async with session.get(url + "/", headers={"if-none-match": etag}) as again:
        assert again.status == 304


BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8", "accept-encoding": "identity"}


async def test_a_browser_opening_a_client_route_gets_the_index(site):
    url, session = site
    for path in ("/accounts", "/accounts/3", "/api-keys", "/settings", "/sign-in"):
        async with session.get(url + path, headers=BROWSER) as response:
            assert response.status == 200, path
            assert await response.read() == INDEX


async def test_a_script_asking_for_an_unknown_path_keeps_the_json_404(site):
    url, session = site
    async with session.get(url + "/accounts", headers={"accept": "*/*"}) as response:
        assert response.status == 404
        assert "Nothing is served at GET /accounts" in (await response.json())["error"]["message"]


async def test_hashed_assets_are_cached_for_a_year_and_gzipped(site):
    url, session = site
    async with session.get(
        url + "/assets/index-abc123.js", headers={"accept-encoding": "gzip, br"}
    ) as response:
        assert response.status == 200
        assert "javascript" in response.headers["content-type"]
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "accept-encoding"
        body = await response.read()
        assert len(body) < len(SCRIPT) / 5
        assert gzip.decompress(body) == SCRIPT
    async with session.get(url + "/assets/index-abc123.js", headers={"accept-encoding": "identity"}) as plain:
        assert "content-encoding" not in plain.headers
        assert await plain.read() == SCRIPT


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",
        "/api/accounts/abc",
        "/v1/nope",
        "/backend-api/nope",
        "/health/nope",
        "/assets/missing.js",
        "/x.png",
    ],
)
async def test_unknown_api_paths_and_missing_files_stay_json_404(site, path):
    url, session = site
    async with session.get(url + path, headers=BROWSER) as response:
        assert response.status == 404
        body = await response.json()
        assert path in body["error"]["message"]


async def test_existing_routes_still_win_over_the_fallback(site):
    url, session = site
    async with session.get(url + "/health/live") as response:
        assert response.status == 200
        assert "json" in response.headers["content-type"]
    async with session.get(url + "/api/settings") as response:
        assert response.status == 200
        assert "upstream_stream_transport" in await response.json()


async def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path):
    async with serve_in_process(make_settings(tmp_path / "data")) as server:
        server.app.ctx.static_site = StaticSite(tmp_path / "nothing-here")
        async with aiohttp.ClientSession() as session, session.get(server.url + "/") as response:
            assert response.status == 404
            assert "scripts/build-dashboard" in (await response.json())["error"]["message"]


async def test_other_methods_on_unknown_paths_stay_404_not_405(site):
    url, session = site
    for path in ("/v1/nope", "/nope", "/api/nope"):
        async with session.post(url + path, json={}) as response:
            assert response.status == 404, path
