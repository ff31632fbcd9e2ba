"""Client WebSockets through the proxy, over upstream WebSockets and over HTTP, and HTTP over sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from tests.fake_upstream.client import user_message
from tests.support.proxy import CODEX_ROUTE, codex_body

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


def ws_url(proxy, path: str = CODEX_ROUTE) -> str:
    return proxy.url.replace("http://", "ws://") + path


async def set_transport(proxy, value: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": value}) as r:
            assert r.status == 200, await r.text()


async def turn(ws, frame: dict, timeout: float = 10.0) -> list[dict]:
    """Send one response.create frame and read events until the turn's terminal event."""
    await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
    events = []
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        event = orjson.loads(message.data)
        events.append(event)
        if event["type"] in TERMINAL:
            return events


def text_of(events: list[dict]) -> str:
    return "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta")


def completed_id(events: list[dict]) -> str:
    assert events[-1]["type"] == "response.completed", events[-1]
    return events[-1]["response"]["id"]


def codex_frame(text: str = "hello", **extra) -> dict:
    body = codex_body(text, **extra)
    body.pop("stream")
    return body


SESSION = {"session-id": "thread-ws-1", "originator": "codex_exec"}


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_prewarm_and_several_turns_share_one_socket(proxy, upstream):
    await proxy.add_accounts("acc_ws_a", "acc_ws_b")
    await set_transport(proxy, upstream)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            prewarm = await turn(ws, {**codex_frame("warm up"), "generate": False})
            first = await turn(ws, {**codex_frame("first question"), "previous_response_id": completed_id(prewarm)})
            assert "Hello from fake account" in text_of(first)
            tool_call = await turn(
                ws,
                {**codex_frame("CALL_TOOL please", tools=[_shell_tool()]), "previous_response_id": completed_id(first)},
            )
            call = next(e["item"] for e in tool_call if e["type"] == "response.output_item.done")
            assert call["type"] == "function_call"
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "tool says hi"}
            last = await turn(
                ws,
                {
                    "model": "gpt-5.4",
                    "input": [output],
                    "tools": [_shell_tool()],
                    "store": False,
                    "previous_response_id": completed_id(tool_call),
                },
            )
            assert "Tool result: tool says hi" in text_of(last)
    stats = proxy.fake.stats()
    print(stats)
    rows = await proxy.request_logs(4)
    assert len(rows) == 4
    assert {row["transport"] for row in rows} == {"websocket"}
    assert {row["status"] for row in rows} == {200}
    assert len({row["account_id"] for row in rows if row["account_id"]}) == 1


def _shell_tool() -> dict:
    return {
        "type": "function",
        "name": "exec_command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    }
