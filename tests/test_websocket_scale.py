"""200 client WebSockets at once on `sanic server.app --workers 2`, each on its own upstream socket."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from server.db import Database
from server.usage import queries
from tests.conftest import make_settings
from tests.support.live_server import ServerProcess
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_proxy_websocket import completed_id, text_of, turn

pytestmark = pytest.mark.slow
SOCKETS = 200


async def _import_accounts(url: str, fake, count: int) -> None:
    form = aiohttp.FormData()
    for i in range(count):
        auth = await fake.create_account(f"acc_scale_{i}")
        form.add_field("auth_json", orjson.dumps(auth), filename=f"{i}.json", content_type="application/json")
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/accounts/import", data=form) as response:
            assert response.status == 200, await response.text()


async def _until_every_worker_serves(url: str, timeout: float = 20.0) -> None:
    """Both workers have loaded the roster: batches of 16 fresh connections keep being served."""
    body = {"model": "gpt-5.4", "input": "ready?"}
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.post(url + "/v1/responses", json=body) as response:
                await response.read()
                return response.status

        async def batch() -> set[int]:
            return set(await asyncio.gather(*(one() for _ in range(16))))

        # Fresh connections may all land on one worker, so the batches must keep passing for longer than
        # one database poll (1.5 s), by which time a worker that was not sampled has reloaded anyway.
        await eventually(batch, lambda statuses: statuses == {200}, timeout=timeout, interval=0.1, hold=2.0)


async def test_200_concurrent_sockets_on_two_workers(tmp_path, fake_upstream_process):
    fake = fake_upstream_process
    settings = make_settings(tmp_path / "data")
    server = ServerProcess(
        {
            "CODEX_LB_DATA_DIR": str(settings.data_dir),
            "CODEX_LB_UPSTREAM_BASE_URL": fake.base_url,
            "CODEX_LB_AUTH_BASE_URL": fake.auth_url,
            "CODEX_LB_UPSTREAM_STREAM_TRANSPORT": "websocket",
            "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "64",
            "CODEX_LB_LOG_LEVEL": "WARNING",
        },
        workers=2,
    )
    server.start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        await _import_accounts(server.url, fake, 8)
        await _until_every_worker_serves(server.url)
        before = (await fake.stats())["totals"]
        ws_url = server.url.replace("http://", "ws://") + CODEX_ROUTE
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            sockets = await asyncio.gather(*(session.ws_connect(ws_url) for _ in range(SOCKETS)))
            try:

                async def conversation(n: int, ws) -> str:
                    frame = codex_body(f"socket {n}", prompt_cache_key=f"scale-{n}")
                    frame.pop("stream")
                    first = await turn(ws, frame, timeout=60)
                    second = await turn(
                        ws, {**frame, "input": [], "previous_response_id": completed_id(first)}, timeout=60
                    )
                    assert second[-1]["type"] == "response.completed", second[-1]
                    return text_of(second)

                texts = await asyncio.gather(*(conversation(n, ws) for n, ws in enumerate(sockets)))
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets))
        assert all(text.startswith("Hello from fake account") for text in texts)
        after = (await fake.stats())["totals"]
        assert (
            after["transports"].get("websocket", 0) - before["transports"].get("websocket", 0) == 2 * SOCKETS
        )
        assert after["ws_connections"] - before["ws_connections"] == SOCKETS  # one upstream socket each
        database = Database(settings)
        await asyncio.get_running_loop().run_in_executor(None, database.open)
        try:

            async def socket_rows() -> list[dict]:
                rows = await database.run(queries.recent_requests, 5000)
                return [r for r in rows if r["transport"] == "websocket"]

            rows = await eventually(
                socket_rows, lambda rows: len(rows) >= 2 * SOCKETS, timeout=15, interval=0.1
            )
        finally:
            database.close()
        assert len(rows) == 2 * SOCKETS and {row["status"] for row in rows} == {200}
    finally:
        assert server.stop() == 0, server.output()[-3000:]
