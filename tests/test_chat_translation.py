"""Golden tests of the Chat Completions translation on Responses streams recorded from the fake backend.

Each case in tests/golden/chat has the upstream bytes (`.responses.sse`), the chunks a streaming client
gets (`.chat.sse`) and the object a non-streaming client gets (`.chat.json`). Re-record with
`REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_chat_translation.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream.client import bearer
from server.proxy import chat_request
from server.proxy.chat_stream import ChatTranslator
from server.upstream.sse import SSEScanner

GOLDEN = Path(__file__).parent / "golden" / "chat"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}
# name -> (fake behaviour, Responses body extras, user text)
CASES = {
    "text": ({"reply_text": "Hello there, friend.", "deltas": 3}, {}, "hi"),
    "parallel_tool_calls": (
        {},
        {"tools": [WEATHER, TIME], "parallel_tool_calls": True},
        'go [[tool:get_weather {"city": "Oslo"}]] [[tool:get_time {"zone": "CET"}]]',
    ),
    "reasoning": (
        {"reply_text": "Done thinking.", "reasoning_summary_text": "Weighing the options carefully."},
        {"reasoning": {"effort": "high", "summary": "auto"}},
        "think",
    ),
    "failed": ({"in_stream_failure_code": "server_is_overloaded"}, {}, "hi"),
    "error_event": (
        {"in_stream_failure_code": "rate_limit_exceeded", "in_stream_failure_as": "error"},
        {},
        "hi",
    ),
    "incomplete": ({"reply_text": "Cut short by the cap", "incomplete": True}, {}, "hi"),
    "truncated": (
        {"reply_text": "This answer never ends properly", "cut_stream": True, "cut_after_deltas": 2},
        {},
        "hi",
    ),
}


def translate(raw: bytes, streaming: bool) -> ChatTranslator | bytes:
    translator = ChatTranslator("gpt-5.4", streaming=streaming, include_usage=True, include_reasoning=True)
    translator.created = 0
    scanner, out = SSEScanner(), []
    for start in range(0, len(raw), 7):  # arrive in small pieces, events split across chunks
        for event in scanner.feed(raw[start : start + 7]):
            out.extend(translator.feed(event))
    if not translator.finished:
        out.extend(translator.truncated())
    return b"".join(out) if streaming else translator


@pytest.mark.parametrize("case", sorted(CASES))
def test_translation_matches_the_golden_output(case):
    raw = (GOLDEN / f"{case}.responses.sse").read_bytes()
    assert translate(raw, streaming=True) == (GOLDEN / f"{case}.chat.sse").read_bytes()
    translator = translate(raw, streaming=False)
    expected = orjson.loads((GOLDEN / f"{case}.chat.json").read_bytes())
    if translator.error is None:
        assert translator.completion() == expected
    else:
        assert {"error": translator.error} == expected


def test_golden_streams_say_what_clients_expect():
    """Spot checks of the recorded outputs, so a careless re-record cannot bless a broken translation."""

    def chunks(case):
        lines = (GOLDEN / f"{case}.chat.sse").read_bytes().split(b"\n\n")
        return [orjson.loads(line[6:]) if line != b"data: [DONE]" else "[DONE]" for line in lines if line]

    text = chunks("text")
    assert text[0]["choices"][0]["delta"]["role"] == "assistant" and text[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in text[:-2]) == "Hello there, friend."
    assert text[-3]["choices"][0]["finish_reason"] == "stop" and text[-2]["usage"]["total_tokens"] > 0
    tools = chunks("parallel_tool_calls")
    deltas = [d for c in tools[:-2] for d in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {d["index"] for d in deltas} == {0, 1} and tools[-3]["choices"][0]["finish_reason"] == "tool_calls"
    reasoning = chunks("reasoning")
    assert any("reasoning_content" in c["choices"][0]["delta"] for c in reasoning[:-2] if c["choices"])
    assert chunks("incomplete")[-3]["choices"][0]["finish_reason"] == "length"
    assert chunks("failed")[-2]["error"]["code"] == "server_is_overloaded"
    assert chunks("error_event")[-2]["error"]["code"] == "rate_limit_exceeded"
    assert chunks("truncated")[-2]["error"]["code"] == "stream_incomplete"


def test_request_translation():
    raw = orjson.dumps(
        {
            "model": "gpt-5.4",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            ],
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "parallel_tool_calls": False,
            "response_format": {"type": "json_object"},
            "reasoning_effort": "low",
            "max_completion_tokens": 100,
            "temperature": 0.5,
            "top_p": 0.9,
            "user": "someone",
            "seed": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    chat = chat_request.translate(raw, {})
    body = orjson.loads(chat.body)
    assert body["instructions"] == "Be brief.\n\nUse metric units."
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
    ]
    assert body["tools"] == [{"type": "function", "name": "look", "parameters": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "function", "name": "look"}
    assert body["parallel_tool_calls"] is False
    assert body["text"] == {"format": {"type": "json_object"}}
    assert body["reasoning"] == {"effort": "low"}
    assert body["store"] is False and body["stream"] is True and body["prompt_cache_key"]
    for dropped in (
        "temperature",
        "top_p",
        "max_completion_tokens",
        "user",
        "seed",
        "messages",
        "stream_options",
    ):
        assert dropped not in body
    assert (
        chat.stream and chat.include_usage and not chat.include_reasoning and chat.reasoning_effort == "low"
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"presence_penalty": 1.0}, "presence_penalty"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
    ],
)
def test_bad_requests_name_the_parameter(extra, param):
    payload = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(Exception) as caught:
        chat_request.translate(orjson.dumps(payload), {})
    assert caught.value.status == 400 and caught.value.param == param


@pytest.mark.skipif(not os.environ.get("REGEN_GOLDEN"), reason="set REGEN_GOLDEN=1 to re-record")
async def test_record_golden_streams(fake_upstream):
    async with aiohttp.ClientSession() as session:
        for case, (behaviour, extra, text) in CASES.items():
            auth = await fake_upstream.create_account(f"acc_golden_{case}", **behaviour)
            body = {
                "model": "gpt-5.4",
                "instructions": "",
                "store": False,
                "stream": True,
                "input": [
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
                ],
                **extra,
            }
            async with session.post(
                fake_upstream.base_url + "/codex/responses", json=body, headers=bearer(auth)
            ) as answer:
                raw = b""
                try:
                    async for chunk in answer.content.iter_any():
                        raw += chunk
                except aiohttp.ClientPayloadError:
                    pass  # the truncated case
            (GOLDEN / f"{case}.responses.sse").write_bytes(raw)
            (GOLDEN / f"{case}.chat.sse").write_bytes(translate(raw, streaming=True))
            translator = translate(raw, streaming=False)
            result = translator.completion() if translator.error is None else {"error": translator.error}
            (GOLDEN / f"{case}.chat.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
