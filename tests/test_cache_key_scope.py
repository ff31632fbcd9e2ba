"""/v1 requests without a session or cache key get a derived prompt_cache_key scoped per API key or, for
keyless clients, per client address: one busy script cannot pin everyone's identical prompts on one
account, while each client's own repeats stay together."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from tests.support.keys import bearer, create_key
from tests.support.proxy import CODEX_ROUTE

# Cache-key scoping: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

ROUTES = {
    "/v1/responses": {"model": "gpt-5.4", "input": "Same prompt", "instructions": "Same rules."},
    "/v1/chat/completions": {
        "model": "gpt-5.4",
        "messages": [
            {"role": "system", "content": "Same rules."},
            {"role": "user", "content": "Same prompt"},
        ],
    },
}


async def post_from(proxy, address: str, path: str, headers: dict | None = None) -> None:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = orjson.dumps(ROUTES[path])
        async with session.post(proxy.url + path, data=body, headers=headers or {}) as r:
            assert r.status == 200, await r.text()
            await r.read()


async def cache_keys(proxy) -> list[str]:
    return [r["body"]["prompt_cache_key"] for r in await proxy.fake.requests(path=CODEX_ROUTE)]


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_keyless_clients_at_different_addresses_get_different_cache_keys(proxy, path):
    await proxy.add_accounts("acc_a", "acc_b")
    await post_from(proxy, "127.0.0.1", path)
    await post_from(proxy, "127.0.0.1", path)
    await post_from(proxy, "127.0.0.2", path)
    first, again, other = await cache_keys(proxy)
    assert first == again  # one client's repeats keep their account and upstream cache
    assert other != first


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_clients_with_different_keys_get_different_cache_keys(proxy, path):
    await proxy.add_accounts("acc_a")
    one, two = await create_key(proxy.url, name="one"), await create_key(proxy.url, name="two")
    await post_from(proxy, "127.0.0.1", path, bearer(one))
    await post_from(proxy, "127.0.0.2", path, bearer(one))
    await post_from(proxy, "127.0.0.1", path, bearer(two))
    first, same_key, other_key = await cache_keys(proxy)
    assert first == same_key and other_key != first
