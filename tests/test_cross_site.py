"""Cross-site protection (issue 12 defect 3): a web page in a local browser cannot drive the server,
while the Codex CLI, SDKs (no Origin) and the dashboard's own origin keep working."""

from __future__ import annotations

import aiohttp
import pytest

from server.demo.fake_upstream.client import user_message
from tests.support.proxy import CODEX_ROUTE, codex_body, proxy_settings, serve_proxy
from tests.test_proxy_websocket import SESSION, codex_frame, completed_id, turn, ws_url

# Cross-site refusals: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

EVIL = "https://evil.example"


async def test_a_foreign_page_cannot_pause_an_account_but_the_cli_and_the_dashboard_can(proxy):
    await proxy.add_accounts("acc_cs_1", "acc_cs_2")
    own = proxy.url
    async with aiohttp.ClientSession() as http:
        foreign = {"Origin": EVIL, "Content-Type": "text/plain"}
        async with http.post(proxy.url + "/api/accounts/2/pause", data=b"{}", headers=foreign) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "cross_site_request"
        no_cors = {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
        async with http.post(proxy.url + "/api/accounts/2/pause", data=b"{}", headers=no_cors) as response:
            assert response.status == 403
        async with http.post(
            proxy.url + "/api/accounts/2/pause", data=b"{}", headers={"Content-Type": "text/plain"}
        ) as response:
            assert response.status == 415  # no Origin, but not JSON: no form can send JSON cross-site
        assert [a["status"] for a in await proxy.accounts()] == ["active", "active"]
        async with http.post(proxy.url + "/api/accounts/2/pause") as response:  # curl, the CLI
            assert response.status == 200
        async with http.post(
            proxy.url + "/api/accounts/2/resume", json={}, headers={"Origin": own}
        ) as response:
            assert response.status == 200  # the dashboard's own origin
        same = {"Sec-Fetch-Site": "same-origin", "Origin": own}
        async with http.post(proxy.url + "/api/accounts/2/pause", json={}, headers=same) as response:
            assert response.status == 200


async def test_a_foreign_page_cannot_import_an_account_or_create_a_key(proxy):
    form = aiohttp.FormData()
    form.add_field("auth_json", b"{}", filename="auth.json")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            proxy.url + "/api/accounts/import", data=form, headers={"Origin": EVIL}
        ) as response:
            assert response.status == 403
        text_plain = {"Content-Type": "text/plain"}
        async with http.post(
            proxy.url + "/api/api-keys", data=b'{"name": "x"}', headers=text_plain
        ) as response:
            assert response.status == 415
        async with http.get(proxy.url + "/api/api-keys") as response:
            assert (await response.json())["api_keys"] == []


async def test_a_foreign_page_cannot_run_a_turn_over_http(proxy):
    await proxy.add_accounts("acc_cs_http")
    foreign = {"Origin": EVIL, "Content-Type": "text/plain"}
    answer = await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"}, foreign)
    assert answer.status == 403
    answer = await proxy.post(CODEX_ROUTE, codex_body("hi"), {"Content-Type": "application/json"})
    assert answer.status == 200


@pytest.mark.parametrize("path", [CODEX_ROUTE, "/v1/responses"])
async def test_websocket_upgrades_from_a_foreign_origin_are_refused(proxy, path):
    await proxy.add_accounts("acc_cs_ws")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url(proxy, path), origin=EVIL)
        assert refused.value.status == 403
        for origin in (None, proxy.url):  # the CLI sends none; a page of the dashboard its own
            async with http.ws_connect(ws_url(proxy, path), origin=origin, headers=SESSION) as ws:
                frame = (
                    codex_frame("hello")
                    if path == CODEX_ROUTE
                    else {"model": "gpt-5.4", "input": [user_message("hi")]}
                )
                completed_id(await turn(ws, frame))


async def test_an_allowed_origin_may_open_a_websocket(tmp_path, fake_upstream):
    settings = proxy_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'store.db'}",
        fake_upstream,
        allowed_origins="https://tools.example, http://localhost:5173",
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_cs_allowed")
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(ws_url(proxy), origin="https://tools.example", headers=SESSION) as ws:
                completed_id(await turn(ws, codex_frame("hello")))
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(ws_url(proxy), origin="https://tools.example.evil.example")
