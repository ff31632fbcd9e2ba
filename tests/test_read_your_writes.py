"""Read-your-writes on one host: when the dashboard API answers a change (a new key, key auth turned on,
an imported or paused account), every worker of the host already acts on it. Real 2-worker servers."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream import mint_auth_json
from tests.support.keys import set_key_auth
from tests.support.live_server import ServerProcess, free_port
from tests.support.proxy import CODEX_ROUTE, codex_body

pytestmark = pytest.mark.slow
BURST = 24  # fresh connections at once, spread over the workers by the kernel


@pytest.fixture
async def server(tmp_path, fake_upstream):
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path / "data"),
        "CODEX_LB_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake_upstream.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
    }
    process = ServerProcess(env, workers=2).start(tmp_path / "server.log")
    try:
        await process.wait_ready(every_worker=True)
        yield process
    finally:
        process.stop()


async def burst(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> list[int]:
    """The statuses of BURST concurrent requests, each on its own connection."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    data = orjson.dumps(body) if body is not None else None
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.request(method, url, data=data, headers=headers or {}) as answer:
                await answer.read()
                return answer.status

        return list(await asyncio.gather(*(one() for _ in range(BURST))))


async def api(server, method: str, path: str, body=None, form=None) -> dict:
    async with aiohttp.ClientSession() as session:
        kwargs = {"data": form} if form is not None else {"json": body}
        async with session.request(method, server.url + "/api" + path, **kwargs) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json() if answer.status != 204 else {}


async def import_auth(server, auth: dict) -> dict:
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(auth), filename="auth.json")
    return (await api(server, "POST", "/accounts/import", form=form))["imported"][0]


async def test_a_key_created_through_the_api_works_at_once_on_every_worker(server):
    for i in range(3):
        created = await api(server, "POST", "/api-keys", {"name": f"script {i}"})
        bearer = {"authorization": f"Bearer {created['key']}"}
        assert await burst("GET", server.url + "/v1/usage", headers=bearer) == [200] * BURST


async def test_wrong_keys_are_refused_on_every_worker(server):
    wrong = {"authorization": "Bearer sk-clb-" + "x" * 43}
    assert await burst("GET", server.url + "/v1/usage", headers=wrong) == [401] * BURST


async def test_turning_key_auth_on_shuts_keyless_clients_out_at_once(server):
    for _ in range(3):
        await api(server, "PUT", "/settings", {"api_key_auth_enabled": True})
        assert await burst("GET", server.url + "/v1/models") == [401] * BURST
        await api(server, "PUT", "/settings", {"api_key_auth_enabled": False})
        assert await burst("GET", server.url + "/v1/models") == [200] * BURST


async def test_an_imported_account_serves_at_once_on_every_worker(server, fake_upstream):
    await import_auth(server, await fake_upstream.create_account("acc_new"))
    route = server.url + "/backend-api/codex/responses"
    statuses = await burst("POST", route, codex_body("hi"))
    assert statuses == [200] * BURST, server.output()[-4000:]


async def test_a_paused_account_serves_nothing_once_the_pause_is_answered(server, fake_upstream):
    account = await import_auth(server, mint_auth_json("acc_pause"))
    route = server.url + "/backend-api/codex/responses"
    for _ in range(2):
        await api(server, "POST", f"/accounts/{account['id']}/pause")
        served = (await fake_upstream.account_stats("acc_pause")).get("requests", 0)
        assert await burst("POST", route, codex_body("hi")) == [503] * BURST
        assert (await fake_upstream.account_stats("acc_pause")).get("requests", 0) == served
        await api(server, "POST", f"/accounts/{account['id']}/resume")
        assert await burst("POST", route, codex_body("hi")) == [200] * BURST


async def test_a_key_another_replica_just_created_is_accepted_before_the_body_is_read(proxy):
    """A key written by another process (here the store, as `codex-lb keys create` or another replica
    does) is not in this worker's copy until its next poll: the pre-body admission asks the database
    before it refuses, as the middleware does for requests without a body."""
    from server.keys import store
    from server.keys.spec import KeySpec

    await proxy.add_accounts("acc_fresh")
    await set_key_auth(proxy.url, True)
    db = proxy.server.app.ctx.db
    for name in ("replica a", "replica b"):
        _, secret = await db.run(store.create, KeySpec.parse({"name": name}, creating=True))
        answer = await proxy.post(CODEX_ROUTE, codex_body("hello"), {"authorization": f"Bearer {secret}"})
        assert answer.status == 200, answer.raw


async def test_a_routing_policy_is_followed_by_every_worker_once_answered(server, fake_upstream):
    first = await import_auth(server, mint_auth_json("acc_policy_a"))
    second = await import_auth(server, mint_auth_json("acc_policy_b"))
    route = server.url + "/backend-api/codex/responses"
    for burner, normal in ((first, second), (second, first), (first, second)):
        await api(server, "PUT", f"/accounts/{burner['id']}/policy", {"routing_policy": "burn_first"})
        await api(server, "PUT", f"/accounts/{normal['id']}/policy", {"routing_policy": "normal"})
        served = (await fake_upstream.account_stats(normal["chatgpt_account_id"])).get("requests", 0)
        # One at a time (a burst would overflow the burn_first account's in-flight cap, by design),
        # each on a fresh connection, so the kernel spreads them over both workers.
        for _ in range(BURST // 2):
            assert await burst_of_one(route, codex_body("hi")) == 200
        assert (await fake_upstream.account_stats(normal["chatgpt_account_id"])).get("requests", 0) == served


async def burst_of_one(url: str, body: dict) -> int:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=orjson.dumps(body)) as answer:
            await answer.read()
            return answer.status
