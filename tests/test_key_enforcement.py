"""API keys at the proxy: who gets in (key auth on/off, local-only), model rules, every limit type."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from sanic import Sanic
from sanic.request import Request

from server.auth.guard import authorize_proxy
from server.demo.fake_upstream.client import user_message
from server.errors import ProxyError
from server.keys.secret import digest
from server.runtime_settings import RuntimeSettings
from tests.support.keys import api, bearer, create_key, set_key_auth
from tests.support.polling import eventually
from tests.support.proxy import codex_body, proxy_settings, serve_proxy

CODEX = "/backend-api/codex/responses"
OPENAI = "/v1/responses"
ALLOWANCE = 100


@pytest.fixture
async def proxy(tmp_path, database_url, fake_upstream):
    """codex-lb with a small output allowance, so token and cost budgets admit a few requests each."""
    settings = proxy_settings(
        tmp_path, database_url, fake_upstream, key_output_allowance_tokens=str(ALLOWANCE)
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


def openai_body(model: str = "gpt-5.4", **extra) -> dict:
    return {"model": model, "input": [user_message("hello")], **extra}


async def _usage(proxy, key) -> dict:
    async with __import__("aiohttp").ClientSession() as session:
        async with session.get(proxy.url + "/v1/usage", headers=bearer(key)) as response:
            assert response.status == 200
            return await response.json()


async def _settled(proxy, key, timeout: float = 5.0) -> dict:
    """/v1/usage once every reservation of the key has been settled (settlement runs in the background)."""
    return await eventually(
        lambda: _usage(proxy, key),
        lambda usage: all(limit["reserved"] == 0 for limit in usage["limits"]),
        timeout=timeout,
    )


# --- who gets in ------------------------------------------------------------------------------------


async def test_key_auth_off_serves_local_requests_without_a_key(proxy):
    await proxy.add_accounts("acc_1")
    assert (await proxy.post(CODEX, codex_body())).status == 200
    # The Codex CLI sends its own ChatGPT token: ignored while key auth is off.
    assert (await proxy.post(CODEX, codex_body(), {"Authorization": "Bearer eyJhbGciOi.x.y"})).status == 200


async def test_key_auth_off_refuses_relayed_or_rebound_requests(proxy):
    await proxy.add_accounts("acc_1")
    for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"X-Real-IP": "127.0.0.1"}, {"Host": "evil.example"}):
        answer = await proxy.post(CODEX, codex_body(), headers)
        assert answer.status == 401, headers
        error = answer.json()["error"]
        assert error["code"] == "local_only" and "enable API-key auth" in error["message"]
    assert await proxy.turns() == []


class _ConnInfo:
    def __init__(self, ip: str) -> None:
        self.client_ip = ip


class _Keys:
    def __init__(self, *records) -> None:
        self._by_hash = {r.key_hash: r for r in records}

    def lookup(self, presented: str):
        return self._by_hash.get(digest(presented))


def _request(peer: str, headers: dict, auth_on: bool, keys=None) -> Request:
    app = Sanic("guard-test")
    app.ctx.proxy = SimpleNamespace(
        runtime=SimpleNamespace(current=RuntimeSettings(api_key_auth_enabled=auth_on)), keys=keys or _Keys()
    )
    request = Request(b"/v1/responses", {"host": "127.0.0.1:2455", **headers}, "1.1", "POST", None, app)
    request.conn_info = _ConnInfo(peer)
    return request


def test_a_spoofed_forwarded_for_from_a_remote_peer_is_refused():
    request = _request("192.0.2.10", {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "::1"}, auth_on=False)
    with pytest.raises(ProxyError) as caught:
        authorize_proxy(request)
    assert caught.value.status == 401 and caught.value.code == "local_only"


def test_a_remote_peer_with_a_valid_key_is_served_when_key_auth_is_on():
    from server.keys.store import KeyRecord

    record = KeyRecord(
        1, "k", "sk-clb-abcde", digest("sk-clb-secret"), True, None, None, None, None, (), 0, 0
    )
    request = _request("192.0.2.10", {"Authorization": "Bearer sk-clb-secret"}, True, _Keys(record))
    assert authorize_proxy(request) is record
    with pytest.raises(ProxyError) as caught:
        authorize_proxy(_request("192.0.2.10", {}, True, _Keys(record)))
    assert caught.value.status == 401 and caught.value.code == "invalid_api_key"


async def test_key_auth_on_needs_a_valid_key_on_every_proxy_route(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url)
    expired = await create_key(proxy.url, name="old", expires_at=time.time() + 3600)
    past = {"expires_at": time.time() - 1}
    status, _ = await api(proxy.url, "PATCH", f"/api/api-keys/{expired['id']}", past)
    assert status == 200  # a new key cannot be born expired; an existing one can be expired now
    await set_key_auth(proxy.url, True)
    compact_body = {"model": "gpt-5.4", "input": [user_message("hi")], "instructions": "x"}
    routes = [
        (CODEX, codex_body()),
        (OPENAI, openai_body()),
        ("/backend-api/codex/responses/compact", compact_body),
        ("/v1/responses/compact", compact_body),
    ]
    for path, body in routes:
        for headers, why in (
            ({}, "needs a codex-lb API key"),
            ({"Authorization": "Bearer eyJhbGciOi.x.y"}, "Incorrect API key"),
            (bearer("sk-clb-" + "x" * 43), "Incorrect API key"),
            (bearer(expired), "expired"),
        ):
            answer = await proxy.post(path, body, headers)
            assert answer.status == 401, (path, headers)
            error = answer.json()["error"]
            assert error["code"] == "invalid_api_key" and why in error["message"], (path, error)
        assert (await proxy.post(path, body, bearer(key))).status == 200, path
    logs = await proxy.request_logs(4)
    assert {row["api_key_id"] for row in logs if row["status"] == 200} == {key["id"]}


async def test_a_key_expires_on_time(proxy):
    await proxy.add_accounts("acc_1")
    await set_key_auth(proxy.url, True)
    key = await create_key(proxy.url, expires_at=time.time() + 1.5)
    assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 200
    answer = await eventually(
        lambda: proxy.post(CODEX, codex_body(), bearer(key)),
        lambda answer: answer.status != 200,
        interval=0.1,
    )
    assert answer.status == 401 and "expired" in answer.json()["error"]["message"]


async def test_usage_always_needs_a_key(proxy):
    async with __import__("aiohttp").ClientSession() as session:
        async with session.get(proxy.url + "/v1/usage") as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "invalid_api_key"


# --- what a key may use -----------------------------------------------------------------------------


async def test_models_and_efforts_outside_the_allowed_lists_get_403(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url, allowed_models=["gpt-5.4"], allowed_reasoning_efforts=["low", "medium"])
    await set_key_auth(proxy.url, True)
    assert (await proxy.post(OPENAI, openai_body("gpt-5.4"), bearer(key))).status == 200
    refused = await proxy.post(OPENAI, openai_body("gpt-5.5"), bearer(key))
    assert refused.status == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    assert "gpt-5.5" in refused.json()["error"]["message"]
    effort = await proxy.post(OPENAI, openai_body(reasoning={"effort": "high"}), bearer(key))
    assert effort.status == 403 and effort.json()["error"]["code"] == "reasoning_effort_not_allowed"
    assert (await proxy.post(OPENAI, openai_body(reasoning={"effort": "low"}), bearer(key))).status == 200
    assert len(await proxy.turns()) == 2


async def test_a_key_restricted_to_some_accounts_uses_only_those(proxy):
    imported = await proxy.add_accounts("acc_1", "acc_2", "acc_3")
    only = next(a["id"] for a in imported if a["chatgpt_account_id"] == "acc_2")
    key = await create_key(proxy.url, allowed_account_ids=[only])
    await set_key_auth(proxy.url, True)
    for i in range(6):
        assert (await proxy.post(OPENAI, openai_body(input=f"q{i}"), bearer(key))).status == 200
    assert set(await proxy.served_by()) == {"acc_2"}


async def test_a_restricted_key_stays_on_its_accounts_while_the_pool_changes(proxy):
    """Each key's view of the pool is cached per worker: an account added, paused or taken off the key
    while the view is warm must count from the next request on."""
    ids = {a["chatgpt_account_id"]: a["id"] for a in await proxy.add_accounts("acc_1", "acc_2", "acc_3")}
    key = await create_key(proxy.url, allowed_account_ids=[ids["acc_2"], ids["acc_3"]])
    twin = await create_key(proxy.url, name="twin", allowed_account_ids=[ids["acc_3"], ids["acc_2"]])
    await set_key_auth(proxy.url, True)

    async def served(count: int, *keys: dict) -> set[str]:
        before = len(await proxy.served_by())
        for i in range(count):
            for k in keys:
                answer = await proxy.post(CODEX, codex_body(f"q{i}"), {**bearer(k), "session_id": f"s{i}"})
                assert answer.status == 200, answer.raw[:300]
        return set((await proxy.served_by())[before:])

    assert await served(6, key, twin) <= {"acc_2", "acc_3"}  # the views are warm
    ids |= {a["chatgpt_account_id"]: a["id"] for a in await proxy.add_accounts("acc_4")}
    assert await served(6, key, twin) <= {"acc_2", "acc_3"}
    status, _ = await api(proxy.url, "POST", f"/api/accounts/{ids['acc_2']}/pause")
    assert status == 200
    assert await served(6, key, twin) == {"acc_3"}
    status, _ = await api(proxy.url, "POST", f"/api/accounts/{ids['acc_3']}/pause")
    assert status == 200
    before = len(await proxy.turns())
    refused = await proxy.post(CODEX, codex_body(), bearer(key))
    assert refused.status != 200 and len(await proxy.turns()) == before  # not sent to acc_1 or acc_4
    status, _ = await api(
        proxy.url, "PATCH", f"/api/api-keys/{key['id']}", {"allowed_account_ids": [ids["acc_4"]]}
    )
    assert status == 200
    assert await served(4, key) == {"acc_4"}


# --- limits -----------------------------------------------------------------------------------------


def _assert_limit_error(answer, *phrases: str) -> dict:
    assert answer.status == 429
    error = answer.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "api_key_limit_reached"
    assert "not an OpenAI limit" in error["message"] and "resets at" in error["message"]
    for phrase in phrases:
        assert phrase in error["message"], error["message"]
    headers = {name.lower(): value for name, value in answer.headers.items()}
    assert 1 <= int(headers["retry-after"]) <= error["resets_at"] - time.time() + 1
    return error


async def test_requests_per_minute(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url, limits=[{"quantity": "requests", "window": "minute", "max": 2}])
    await set_key_auth(proxy.url, True)
    if 60 - time.time() % 60 < 5:
        await asyncio.sleep(60 - time.time() % 60)  # keep the three requests in one calendar minute
    assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 200
    assert (await proxy.post(OPENAI, openai_body(), bearer(key))).status == 200
    await _settled(proxy, key)
    error = _assert_limit_error(await proxy.post(CODEX, codex_body(), bearer(key)), "2 requests per minute")
    assert error["limit"] == {"quantity": "requests", "window": "minute", "max": 2.0, "model": None}
    assert len(await proxy.turns()) == 2
    usage = await _settled(proxy, key)
    assert usage["limits"][0]["used"] == 2 and usage["limits"][0]["remaining"] == 0


async def test_requests_per_week_and_month_both_count(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(
        proxy.url,
        limits=[
            {"quantity": "requests", "window": "week", "max": 3},
            {"quantity": "requests", "window": "month", "max": 2},
        ],
    )
    await set_key_auth(proxy.url, True)
    for _ in range(2):
        assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 200
    await _settled(proxy, key)
    _assert_limit_error(await proxy.post(CODEX, codex_body(), bearer(key)), "2 requests per month")
    usage = await _settled(proxy, key)
    assert [(limit["window"], limit["used"]) for limit in usage["limits"]] == [("week", 2), ("month", 2)]


async def test_tokens_per_day_count_the_real_usage(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url, limits=[{"quantity": "tokens", "window": "day", "max": 1000}])
    await set_key_auth(proxy.url, True)
    served = 0
    while True:
        await _settled(proxy, key)
        answer = await proxy.post(CODEX, codex_body(), bearer(key))
        if answer.status != 200:
            break
        served += 1
        assert served < 50
    _assert_limit_error(answer, "1000 tokens per day")
    logs = await proxy.request_logs(served + 1)
    usage = await _settled(proxy, key)  # its totals come from the request log, now written
    mine = [row["total_tokens"] for row in logs if row["api_key_id"] == key["id"] and row["status"] == 200]
    spent = sum(mine)
    limit = usage["limits"][0]
    # Served until the budget was spent; the last one may overshoot it by no more than its own use.
    assert served >= 2 and limit["used"] == spent and spent - max(mine) < 1000 <= spent
    assert limit["window_kind"] == "calendar" and limit["resets_at"].endswith("T00:00:00Z")
    assert usage["total_tokens"] == spent and usage["request_count"] == served
    assert usage["refused_count"] == 1  # the 429 is logged, and counted apart


async def test_cost_per_hour(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url, limits=[{"quantity": "cost_usd", "window": "hour", "max": 0.005}])
    await set_key_auth(proxy.url, True)
    served = 0
    while (answer := await proxy.post(OPENAI, openai_body(), bearer(key))).status == 200:
        served += 1
        assert served < 200
        await _settled(proxy, key)
    _assert_limit_error(answer, "$0.005 per hour")
    usage = await _settled(proxy, key)
    logs = await proxy.request_logs(served + 1)
    costs = [row["cost_usd"] or 0 for row in logs if row["api_key_id"] == key["id"]]
    cost = sum(costs)
    # Served until the budget was spent; the last one may overshoot it by no more than its own cost.
    assert served >= 2 and usage["limits"][0]["used"] == pytest.approx(cost)
    assert cost - max(costs) < 0.005 <= cost + 1e-12


async def test_a_per_model_rule_counts_only_that_model(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(
        proxy.url, limits=[{"quantity": "requests", "window": "hour", "max": 1, "model": "gpt-5.4"}]
    )
    await set_key_auth(proxy.url, True)
    assert (await proxy.post(OPENAI, openai_body("gpt-5.4"), bearer(key))).status == 200
    await _settled(proxy, key)
    _assert_limit_error(await proxy.post(OPENAI, openai_body("gpt-5.4"), bearer(key)), "on gpt-5.4")
    for _ in range(3):
        assert (await proxy.post(OPENAI, openai_body("gpt-5.4-mini"), bearer(key))).status == 200
    assert (await _settled(proxy, key))["limits"][0]["used"] == 1


async def test_keys_without_limits_reserve_nothing(proxy):
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url)
    await set_key_auth(proxy.url, True)
    for _ in range(3):
        assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 200
    status, listed = await api(proxy.url, "GET", "/api/api-keys")
    assert listed["api_keys"][0]["limits"] == []
    usage = await _usage(proxy, key)
    assert usage["limits"] == [] and usage["key"]["id"] == key["id"]


async def test_a_real_non_loopback_peer_through_the_whole_app(proxy):
    """The app's full request pipeline, fed in memory (ASGI) as if from 192.0.2.10: no packet leaves."""
    import httpx

    await proxy.add_accounts("acc_1")
    proxy.server.app.asgi = True  # lets Sanic take ASGI calls beside its socket server

    def client(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=proxy.server.app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:2455")

    body = openai_body()
    async with client("192.0.2.10") as remote, client("127.0.0.1") as local:
        spoofed = await remote.post(OPENAI, json=body, headers={"X-Forwarded-For": "127.0.0.1"})
        assert spoofed.status_code == 401 and spoofed.json()["error"]["code"] == "local_only"
        assert (await local.post(OPENAI, json=body)).status_code == 200  # the peer is what decides
        key = await create_key(proxy.url)
        await set_key_auth(proxy.url, True)
        assert (await remote.post(OPENAI, json=body)).status_code == 401
        assert (await remote.post(OPENAI, json=body, headers=bearer(key))).status_code == 200
