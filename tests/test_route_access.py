"""Every route in the app's route table has a known access rule, proven by asking it.

Public: the health probes and the dashboard's static files. /metrics: dashboard sign-in or its token.
Proxy routes (/v1, /backend-api): an API key, or the local rule while key auth is off. Dashboard API
(/api): a dashboard sign-in, except the routes that let one sign in. A route outside these families
fails the test until it is classified.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from server.auth.gate import PUBLIC_ROUTES
from tests.support.keys import create_key, set_key_auth

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REMOTE = {"X-Forwarded-For": "203.0.113.9"}  # relayed by a local reverse proxy: not a local caller
PARAMETERS = {"int": "1", "str": "x", "path": "gpt-5.4"}
PUBLIC_PREFIXES = ("/health/",)
STATIC_ROUTES = frozenset({"dashboard_index", "dashboard_files"})
PROXY_PREFIXES = ("/v1/", "/backend-api/")


def concrete(path: str) -> str:
    return "/" + re.sub(r"<[^:>]+:([^>]+)>", lambda m: PARAMETERS.get(m.group(1), "x"), path.lstrip("/"))


def routes(app) -> list[tuple[str, str, str]]:
    table = []
    for route in app.router.routes:
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            table.append((method, concrete(route.path), route.name.rsplit(".", 1)[-1]))
    return table


async def test_every_route_has_its_access_rule(proxy):
    await proxy.add_accounts("acc_routes")
    table = routes(proxy.server.app)
    assert len(table) > 40
    unclassified = []
    async with aiohttp.ClientSession() as session:

        async def call(method: str, path: str, headers: dict) -> tuple[int, dict]:
            async with session.request(method, proxy.url + path, json={}, headers=headers) as r:
                body = await r.json(content_type=None) if r.content_type == "application/json" else {}
                return r.status, body

        for method, path, name in table:
            if name in STATIC_ROUTES:
                continue  # the dashboard's own files: public by design, and hold no data
            if path.startswith(PUBLIC_PREFIXES):
                status, _ = await call(method, path, REMOTE)
                assert status in (200, 503), (method, path, status)
            elif path.startswith(PROXY_PREFIXES):
                status, body = await call(method, path, REMOTE)
                assert status == 401, (method, path, status, body)
                assert body["error"]["code"] in ("local_only", "invalid_api_key"), (method, path, body)
            elif path == "/metrics":  # dashboard sign-in or CODEX_LB_METRICS_TOKEN (tests/test_metrics.py)
                status, body = await call(method, path, REMOTE)
                assert status == 401, (method, path, status, body)
            elif path.startswith("/api/"):
                if (method, path) in PUBLIC_ROUTES:
                    continue
                status, body = await call(method, path, REMOTE)
                assert status in (401, 403), (method, path, status, body)
            else:
                unclassified.append((method, path, name))
        assert not unclassified, f"classify these routes in this test: {unclassified}"

        # Key auth on: every proxy route wants a key, even from this machine.
        await create_key(proxy.url)
        await set_key_auth(proxy.url, True)
        for method, path, _ in table:
            if path.startswith(PROXY_PREFIXES):
                status, body = await call(method, path, {})
                assert status == 401 and body["error"]["code"] == "invalid_api_key", (method, path, body)


async def test_unknown_paths_under_the_guarded_prefixes_are_not_the_dashboard(proxy):
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/nope", "/backend-api/nope", "/api/nope", "/health/nope"):
            async with session.get(proxy.url + path, headers=REMOTE) as response:
                assert response.status in (401, 403, 404), (path, response.status)
                assert "text/html" not in response.headers.get("content-type", "")
