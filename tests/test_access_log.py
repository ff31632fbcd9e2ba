"""The access log: one line per proxied request on every route, with the same fields; the account named
by its id everywhere; the upstream transport in the request log; refusals logged with their reason."""

from __future__ import annotations

import logging
import re

import aiohttp
import pytest

from tests.support.keys import bearer, create_key, set_key_auth
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_proxy_websocket import codex_frame, set_transport, turn, ws_url

FIELDS = ("request_id", "route", "transport", "upstream", "account", "model", "status", "tokens",
          "latency_ms", "attempts")  # fmt: skip
LINE = re.compile(r"access (?P<fields>.*)")
CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}

REQUESTS = {
    "codex stream": (CODEX_ROUTE, codex_body("hi")),
    "v1 stream": ("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": True}),
    "v1 json": ("/v1/responses", {"model": "gpt-5.4", "input": "hi"}),
    "chat stream": ("/v1/chat/completions", {**CHAT, "stream": True}),
    "chat json": ("/v1/chat/completions", CHAT),
    "compact": ("/backend-api/codex/responses/compact", {"model": "gpt-5.4", "input": codex_body()["input"]}),
}


def access_lines(caplog) -> list[dict[str, str]]:
    lines = []
    for record in caplog.records:
        match = LINE.match(record.getMessage())
        if match and record.name == "server.proxy.access":
            lines.append(dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', match["fields"])))
    return lines


@pytest.mark.parametrize("kind", sorted(REQUESTS))
async def test_every_route_logs_one_access_line_with_the_same_fields(proxy, caplog, kind):
    caplog.set_level(logging.INFO)
    [account] = await proxy.add_accounts("acc_log")
    path, body = REQUESTS[kind]
    answer = await proxy.post(path, body)
    assert answer.status == 200, answer.raw
    [line] = access_lines(caplog)
    assert tuple(line)[: len(FIELDS)] == FIELDS
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert (line["route"], line["transport"], line["upstream"]) == (path, "http", "http")
    assert (line["account"], line["model"], line["status"], line["attempts"]) == (
        str(account["id"]), "gpt-5.4", "200", "1"
    )  # fmt: skip
    assert int(line["tokens"]) > 0 and float(line["latency_ms"]) > 0
    [row] = await proxy.request_logs(1)
    assert row["upstream_transport"] == "http"


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_websocket_turns_log_the_account_id_and_the_upstream_transport(proxy, caplog, upstream):
    caplog.set_level(logging.INFO)
    await proxy.add_accounts("acc_pad")  # so that slot and id differ
    await proxy.add_accounts("acc_ws_log")
    accounts = {a["chatgpt_account_id"]: a["id"] for a in await proxy.accounts()}
    await set_transport(proxy, upstream)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers={"session-id": "log-1"}) as ws:
            events = await turn(ws, codex_frame("hi"))
    assert events[-1]["type"] == "response.completed"
    [line] = access_lines(caplog)
    served_by = (await proxy.served_by())[-1]
    assert line["account"] == str(accounts[served_by])
    assert (line["transport"], line["upstream"], line["status"]) == ("websocket", upstream, "200")
    [row] = await proxy.request_logs(1)
    assert (row["transport"], row["upstream_transport"]) == ("websocket", upstream)


async def _settled(proxy, key: str, timeout: float = 5.0) -> None:
    """Until the key's reservations are settled (settlement runs after the answer, in the background)."""
    async with aiohttp.ClientSession() as session:

        async def usage() -> dict:
            async with session.get(proxy.url + "/v1/usage", headers=bearer(key)) as response:
                return await response.json()

        await eventually(
            usage, lambda usage: all(limit["reserved"] == 0 for limit in usage["limits"]), timeout=timeout
        )


async def test_refused_requests_get_an_access_line_with_the_reason(proxy, caplog):
    caplog.set_level(logging.INFO)
    await proxy.add_accounts("acc_door")
    key = await create_key(
        proxy.url, allowed_models=["gpt-5.4"], limits=[{"quantity": "requests", "window": "day", "max": 1}]
    )
    await set_key_auth(proxy.url, True)
    assert (await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"}, bearer(key))).status == 200
    await _settled(proxy, key)  # the answer ends before its settlement: until then the request still holds
    caplog.clear()
    answers = [
        await proxy.post("/v1/chat/completions", CHAT),  # no key
        await proxy.post("/v1/responses", b"{not json", bearer(key)),
        await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"}, bearer("sk-clb-" + "x" * 43)),
        await proxy.post("/v1/responses", {"model": "gpt-5.4-mini", "input": "hi"}, bearer(key)),
        await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"}, bearer(key)),
    ]
    assert [a.status for a in answers] == [401, 400, 401, 403, 429]
    lines = access_lines(caplog)
    assert [(line["status"], line["error"]) for line in lines] == [
        ("401", "invalid_api_key"),
        ("400", lines[1]["error"]),
        ("401", "invalid_api_key"),
        ("403", "model_not_allowed"),
        ("429", "api_key_limit_reached"),
    ]
    assert all(tuple(line)[: len(FIELDS)] == FIELDS for line in lines)
    assert [line["request_id"] for line in lines] == [a.headers["X-Request-ID"] for a in answers]
    assert "reached its limit" in lines[-1]["reason"] and lines[0]["route"] == "/v1/chat/completions"
    assert lines[1]["error"] != "refused" and lines[1]["reason"]


async def test_a_websocket_refused_at_the_handshake_gets_an_access_line(proxy, caplog):
    caplog.set_level(logging.INFO)
    await set_key_auth(proxy.url, True)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(proxy))
    assert refused.value.status == 401
    [line] = access_lines(caplog)
    assert (line["route"], line["transport"], line["status"], line["error"]) == (
        CODEX_ROUTE, "websocket", "401", "invalid_api_key"
    )  # fmt: skip
