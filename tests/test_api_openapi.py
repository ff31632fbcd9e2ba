"""The dashboard API describes itself (OpenAPI at /api/openapi.json) and nothing else."""

from __future__ import annotations

import aiohttp


async def test_the_dashboard_api_is_described_and_only_it(live_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(live_server.url + "/api/openapi.json") as response:
            assert response.status == 200
            spec = await response.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "codex-lb dashboard API"
    paths = spec["paths"]
    assert all(path.startswith("/api/") for path in paths), sorted(paths)
    assert {"get", "put"} <= set(paths["/api/settings"])
    assert "post" in paths["/api/accounts/import"] and "get" in paths["/api/accounts/{account_id}"]
    served = {
        "/" + route.path.lstrip("/")
        for route in live_server.app.router.routes
        if route.path.startswith("api/") and route.path != "api/openapi.json"
    }
    described = {path.replace("{", "<").replace("}", "") for path in paths}
    assert len(served) == len(paths), (served, described)
