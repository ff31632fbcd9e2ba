"""/v1/responses streamed: response.completed carries the output (the backend leaves it empty), as the
public Responses API does; the Codex routes keep the backend's events byte for byte."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI

from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_proxy_websocket import set_transport, turn, ws_url

# The /v1 completed output: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.fixture
async def sdk(proxy):
    await proxy.add_accounts("acc_out", reply_text="The answer is 42.")
    client = AsyncOpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
    yield client
    await client.close()


@pytest.mark.parametrize("upstream", ["http", "websocket"])
async def test_sdk_stream_ends_with_a_completed_response_that_has_the_output(proxy, sdk, upstream):
    await set_transport(proxy, upstream)
    stream = await sdk.responses.create(model="gpt-5.4", input="Say it", stream=True)
    events = [event async for event in stream]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "The answer is 42."
    done = [e.item.id for e in events if e.type == "response.output_item.done"]
    assert [item.id for item in completed.response.output] == done


async def test_sdk_stream_helper_final_response_has_the_output(sdk):
    async with sdk.responses.stream(model="gpt-5.4", input="Say it") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "The answer is 42."


async def test_tool_calls_and_reasoning_come_in_output_order(sdk):
    stream = await sdk.responses.create(
        model="gpt-5.4", input="CALL_TOOL now", tools=TOOLS, reasoning={"effort": "low"}, stream=True
    )
    events = [event async for event in stream]
    done = [e for e in events if e.type == "response.output_item.done"]
    output = events[-1].response.output
    assert [item.type for item in output] == [e.item.type for e in sorted(done, key=lambda e: e.output_index)]
    assert "function_call" in [item.type for item in output]


async def test_the_codex_route_keeps_the_backends_empty_output(proxy):
    await proxy.add_accounts("acc_codex")
    answer = await proxy.post(CODEX_ROUTE, codex_body("hi"))
    assert answer.events()[-1]["response"]["output"] == []


@pytest.mark.parametrize(("path", "filled"), [("/v1/responses", True), (CODEX_ROUTE, False)])
@pytest.mark.parametrize("upstream", ["http", "websocket"])
async def test_websocket_clients_get_the_output_on_v1_only(proxy, path, filled, upstream):
    await proxy.add_accounts("acc_ws_out", reply_text="Socket answer.")
    await set_transport(proxy, upstream)
    frame = {"model": "gpt-5.4", "input": "Say it"} if filled else {**codex_body("Say it"), "stream": None}
    frame.pop("stream", None)
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(proxy, path)) as ws:
        events = await turn(ws, frame)
    completed = events[-1]
    assert completed["type"] == "response.completed"
    output = completed["response"]["output"]
    if filled:
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert output == done
        assert output[-1]["content"][0]["text"] == "Socket answer."
    else:
        assert output == []


async def test_an_output_the_upstream_filled_is_left_alone(proxy):
    await proxy.add_accounts("acc_filled", completed_output=True)
    direct = await proxy.post(CODEX_ROUTE, codex_body("hi"))
    upstream_output = direct.events()[-1]["response"]["output"]
    assert upstream_output  # the fake filled it, as the public API would
    answer = await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": True})
    # The completed event passes as the upstream sent it: not rebuilt, nothing doubled.
    assert answer.raw.count(b"event: response.completed") == 1
    [line] = [ln for ln in answer.raw.split(b"\n") if ln.startswith(b'data: {"type":"response.completed"')]
    assert orjson.loads(line[6:])["response"]["output"][0]["type"] == "message"
