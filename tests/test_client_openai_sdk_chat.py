"""The official OpenAI Python SDK's Chat Completions and Models calls against the proxy and the fake."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AsyncOpenAI

# The OpenAI SDK as a client: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


@pytest.fixture
async def sdk(proxy):
    await proxy.add_accounts("acc_chat", reply_text="Hi from the pool.")
    client = AsyncOpenAI(base_url=proxy.url + "/v1", api_key="unused-while-key-auth-is-off", max_retries=0)
    yield client
    await client.close()


async def test_chat_completion_without_streaming(sdk, proxy):
    completion = await sdk.chat.completions.create(
        model="gpt-5.4",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        temperature=0.2,
        max_tokens=50,
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "gpt-5.4"
    assert choice.message.role == "assistant" and choice.message.content == "Hi from the pool."
    assert choice.finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert sent["instructions"] == "Be brief." and sent["store"] is False and sent["stream"] is True
    assert "temperature" not in sent and "max_tokens" not in sent and "messages" not in sent
    rows = await proxy.request_logs(1)
    assert rows[0]["route"] == "/v1/chat/completions" and rows[0]["status"] == 200
    assert rows[0]["output_tokens"] == completion.usage.completion_tokens


async def test_chat_streaming_with_usage_in_the_final_chunk(sdk):
    stream = await sdk.chat.completions.create(
        model="gpt-5.4",
        messages=[{"role": "user", "content": "Say hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi from the pool."
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


async def test_chat_tool_call_and_tool_result_round_trip(sdk, proxy):
    messages = [{"role": "user", "content": "What is the weather in Paris? CALL_TOOL"}]
    first = await sdk.chat.completions.create(model="gpt-5.4", messages=messages, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = await sdk.chat.completions.create(model="gpt-5.4", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool result: sunny, 21C"
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert [item["type"] for item in sent["input"]] == ["message", "function_call", "function_call_output"]
    assert sent["tools"][0]["name"] == "get_weather" and sent["tools"][0]["type"] == "function"


async def test_chat_streams_parallel_tool_calls_with_indexes(sdk):
    prompt = 'Both please [[tool:get_weather {"city": "Oslo"}]] [[tool:get_time {"zone": "CET"}]]'
    stream = await sdk.chat.completions.create(
        model="gpt-5.4",
        messages=[{"role": "user", "content": prompt}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] += delta.function.name or ""
            entry["arguments"] += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}
    assert json.loads(calls[1]["arguments"]) == {"zone": "CET"}
    assert calls[0]["id"] != calls[1]["id"]


async def test_chat_json_schema_output(sdk, proxy):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
        "required": ["city", "temperature"],
        "additionalProperties": False,
    }
    completion = await sdk.chat.completions.create(
        model="gpt-5.4",
        messages=[{"role": "user", "content": "Weather as JSON"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": schema, "strict": True},
        },
    )
    parsed = json.loads(completion.choices[0].message.content)
    assert set(parsed) == {"city", "temperature"}
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert sent["text"]["format"] == {
        "type": "json_schema",
        "name": "weather",
        "schema": schema,
        "strict": True,
    }


async def test_chat_reasoning_summaries_only_when_asked(sdk, proxy):
    plain = await sdk.chat.completions.create(
        model="gpt-5.4", messages=[{"role": "user", "content": "think"}], reasoning_effort="high"
    )
    assert getattr(plain.choices[0].message, "reasoning_content", None) is None
    assert (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]["reasoning"] == {
        "effort": "high"
    }
    stream = await sdk.chat.completions.create(
        model="gpt-5.4",
        messages=[{"role": "user", "content": "think"}],
        reasoning_effort="high",
        stream=True,
        extra_body={"include_reasoning": True},
    )
    reasoning = ""
    async for chunk in stream:
        if chunk.choices:
            reasoning += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
    assert reasoning
    assert (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]["reasoning"][
        "summary"
    ] == "auto"


async def test_chat_refuses_parameters_the_backend_cannot_honour(sdk, proxy):
    for extra, param in (
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"stop": ["END"]}, "stop"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(
                model="gpt-5.4", messages=[{"role": "user", "content": "x"}], **extra
            )
        body = caught.value.body
        assert body["param"] == param and body["code"] == "unsupported_parameter", body
    assert await proxy.fake.requests(path="/backend-api/codex/responses") == []


async def test_chat_unknown_model_is_model_not_found_before_any_account(sdk, proxy):
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(
            model="gpt-unknown-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["code"] == "model_not_found"
    assert await proxy.fake.requests(path="/backend-api/codex/responses") == []


async def test_models_list_and_retrieve(sdk):
    listed = [model async for model in sdk.models.list()]
    ids = [m.id for m in listed]
    assert "gpt-5.4" in ids and all(m.object == "model" for m in listed)
    assert "gpt-5.3-codex-spark" not in ids  # not offered in the API
    model = await sdk.models.retrieve("gpt-5.4")
    assert model.id == "gpt-5.4" and model.owned_by == "codex-lb"
    with pytest.raises(openai.NotFoundError):
        await sdk.models.retrieve("no-such-model")
