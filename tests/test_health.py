"""Health probes and error shapes, through a real socket."""

from __future__ import annotations

import aiohttp


async def test_ready_reports_database_and_schema(live_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(live_server.url + "/health/ready") as response:
            assert response.status == 200
            body = await response.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["schema_version"] >= 1


async def test_live_answers_json(live_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(live_server.url + "/health/live") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"


async def test_probes_answer_head_like_get(live_server):
    async with aiohttp.ClientSession() as session:
        for path in ("/health/live", "/health/ready"):
            async with session.head(live_server.url + path) as response:
                assert response.status == 200, path
                assert await response.read() == b""


async def test_unknown_proxy_route_answers_openai_error_json(live_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(live_server.url + "/v1/nothing-here") as response:
            assert response.status == 404
            body = await response.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in body["error"]["message"]
