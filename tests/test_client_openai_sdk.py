"""The official OpenAI Python SDK against the proxy (and the proxy against the fake upstream)."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI


@pytest.fixture
async def sdk(proxy):
    await proxy.add_accounts("acc_sdk", reply_text="Hi from the pool.")
    client = AsyncOpenAI(base_url=proxy.url + "/v1", api_key="unused-while-key-auth-is-off", max_retries=0)
    yield client
    await client.close()


async def test_responses_create_without_streaming(sdk):
    response = await sdk.responses.create(model="gpt-5.4", input="Say hi", instructions="Be brief.")
    assert response.status == "completed"
    assert response.output_text == "Hi from the pool."
    assert response.usage.output_tokens > 0


async def test_responses_create_streaming(sdk):
    stream = await sdk.responses.create(model="gpt-5.4", input="Say hi", stream=True)
    kinds, text = [], ""
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert text == "Hi from the pool."


async def test_sdk_tool_call_round_trip(sdk):
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    first = await sdk.responses.create(model="gpt-5.4", input="CALL_TOOL please", tools=tools)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    second = await sdk.responses.create(
        model="gpt-5.4",
        tools=tools,
        input=[
            {"role": "user", "content": "CALL_TOOL please"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
        ],
    )
    assert "sunny, 21C" in second.output_text


async def test_sdk_sees_openai_errors(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="gpt-5.3-codex-spark", input="x")  # Pro only; the pool is Plus
    assert "not supported" in caught.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.responses.create(model="gpt-unknown-model", input="x")
    assert missing.value.code == "model_not_found"
