"""The fake backend's HTTP Responses stream: event sequence, usage, caching, reasoning, tools, validation."""

from __future__ import annotations

import orjson
import pytest

from server.demo.fake_upstream.client import bearer, post_responses, responses_body, user_message

TEXT_TURN = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


async def test_text_turn_streams_the_full_sequence_with_an_empty_completed_output(
    fake_upstream, session, auth
):
    result = await post_responses(session, fake_upstream.base_url, responses_body("hi"), bearer(auth))
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.types == TEXT_TURN
    assert [e["sequence_number"] for e in result.events] == list(range(len(TEXT_TURN)))
    assert result.text == "Hello from fake account acc_test."
    response = result.terminal["response"]
    assert response["id"].startswith("resp_") and response["status"] == "completed"
    assert response["output"] == []
    assert result.events[0]["response"]["id"] == response["id"]
    message = result.items[0]
    assert message["id"].startswith("msg_") and message["content"][0]["text"] == result.text
    assert {e["item_id"] for e in result.events if "item_id" in e} == {message["id"]}


async def test_usage_is_deterministic_and_complete(fake_upstream, session, auth):
    body = responses_body("count my tokens")
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    expected_input = (len(orjson.dumps(body["input"])) + len(body["instructions"])) // 4
    assert result.usage == {
        "input_tokens": expected_input,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": expected_input + 5,
    }


async def test_reply_text_and_delta_count_are_configurable_per_account(fake_upstream, session, auth):
    await fake_upstream.configure(
        accounts={"acc_test": {"reply_text": "Model {model} for {account_id}", "deltas": 2}}
    )
    result = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    assert result.text == "Model gpt-5.4 for acc_test"
    assert result.types.count("response.output_text.delta") == 2
    assert result.usage["output_tokens"] == 2
    await fake_upstream.configure(accounts={"acc_test": {"deltas": 12}})
    longer = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    assert longer.types.count("response.output_text.delta") == 12 and longer.usage["output_tokens"] == 12


async def test_prompt_cache_is_per_account_and_keyed_by_prompt_cache_key(fake_upstream, session, auth):
    other = await fake_upstream.create_account("acc_other")
    body = responses_body("a long enough prompt", prompt_cache_key="thread-1")
    first = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    second = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    elsewhere = await post_responses(session, fake_upstream.base_url, body, bearer(other))
    new_key = await post_responses(
        session, fake_upstream.base_url, {**body, "prompt_cache_key": "t2"}, bearer(auth)
    )
    assert first.usage["input_tokens_details"]["cached_tokens"] == 0
    cached = second.usage["input_tokens_details"]["cached_tokens"]
    assert 0 < cached <= second.usage["input_tokens"]
    assert elsewhere.usage["input_tokens_details"]["cached_tokens"] == 0
    assert new_key.usage["input_tokens_details"]["cached_tokens"] == 0


async def test_reasoning_adds_a_summarised_item_and_reasoning_tokens(fake_upstream, session, auth):
    body = responses_body(reasoning={"effort": "high", "summary": "auto"})
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    reasoning = result.items[0]
    assert reasoning["id"].startswith("rs_") and reasoning["type"] == "reasoning"
    assert "encrypted_content" not in reasoning
    summary = "".join(
        e["delta"] for e in result.events if e["type"] == "response.reasoning_summary_text.delta"
    )
    assert summary == reasoning["summary"][0]["text"] == "Thinking about the request."
    assert result.items[1]["type"] == "message" and result.events[-1]["type"] == "response.completed"
    assert result.usage["output_tokens_details"]["reasoning_tokens"] == 16
    assert result.usage["output_tokens"] == 5 + 16


async def test_encrypted_reasoning_only_when_included_and_no_summary_events_without_summary(
    fake_upstream, session, auth
):
    body = responses_body(reasoning={"effort": "medium"}, include=["reasoning.encrypted_content"])
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    assert result.items[0]["encrypted_content"].startswith("gAAAA")
    assert result.items[0]["summary"] == []
    assert "response.reasoning_summary_text.delta" not in result.types


SHELL_TOOLS = [
    {
        "type": "function",
        "name": "shell",
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}},
                "workdir": {"type": "string"},
                "timeout_ms": {"type": "number"},
            },
            "required": ["command"],
        },
    },
    {
        "type": "function",
        "name": "shell_command",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "workdir": {"type": "string"}},
            "required": ["command"],
        },
    },
    {
        "type": "function",
        "name": "exec_command",
        "parameters": {
            "type": "object",
            "properties": {"cmd": {"type": "string"}, "yield_time_ms": {"type": "integer"}},
            "required": ["cmd"],
        },
    },
]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        (SHELL_TOOLS[0], {"command": ["echo", "fake-tool-call"]}),
        (SHELL_TOOLS[1], {"command": "echo fake-tool-call"}),
        (SHELL_TOOLS[2], {"cmd": "echo fake-tool-call"}),
    ],
)
async def test_call_tool_builds_schema_valid_arguments_for_codex_shell_tools(
    fake_upstream, session, auth, tool, arguments
):
    body = responses_body("please CALL_TOOL now", tools=[tool], tool_choice="auto")
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    call = result.items[0]
    assert call["type"] == "function_call" and call["id"].startswith("fc_")
    assert call["call_id"].startswith("call_") and call["name"] == tool["name"]
    streamed = "".join(
        e["delta"] for e in result.events if e["type"] == "response.function_call_arguments.delta"
    )
    done = next(e for e in result.events if e["type"] == "response.function_call_arguments.done")
    assert (
        orjson.loads(streamed)
        == orjson.loads(done["arguments"])
        == orjson.loads(call["arguments"])
        == arguments
    )
    assert result.terminal["type"] == "response.completed"


async def test_tool_marker_picks_the_tool_and_exact_arguments(fake_upstream, session, auth):
    text = 'run [[tool:shell_command {"command": "ls -la", "workdir": "/tmp"}]] please'
    result = await post_responses(
        session, fake_upstream.base_url, responses_body(text, tools=SHELL_TOOLS), bearer(auth)
    )
    call = result.items[0]
    assert call["name"] == "shell_command"
    assert orjson.loads(call["arguments"]) == {"command": "ls -la", "workdir": "/tmp"}


async def test_tool_choice_naming_a_function_forces_that_call(fake_upstream, session, auth):
    weather = {
        "type": "function",
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "days", "unit"],
        },
    }
    body = responses_body(
        "what is the weather",
        tools=[*SHELL_TOOLS, weather],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    assert result.items[0]["name"] == "get_weather"
    assert orjson.loads(result.items[0]["arguments"]) == {"city": "test", "days": 1, "unit": "c"}


async def test_custom_tool_calls_stream_their_input(fake_upstream, session, auth):
    tools = [{"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}]
    result = await post_responses(
        session,
        fake_upstream.base_url,
        responses_body("[[tool:apply_patch *** Begin Patch]]", tools=tools),
        bearer(auth),
    )
    call = result.items[0]
    assert call["type"] == "custom_tool_call" and call["name"] == "apply_patch"
    assert call["input"] == "*** Begin Patch"
    assert "response.custom_tool_call_input.delta" in result.types


@pytest.mark.parametrize("output_type", ["function_call_output", "custom_tool_call_output"])
async def test_tool_output_is_answered_with_text_that_includes_it(fake_upstream, session, auth, output_type):
    items = [
        user_message("CALL_TOOL"),
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"},
        {"type": output_type, "call_id": "call_1", "output": "total 42"},
    ]
    body = {**responses_body(tools=SHELL_TOOLS), "input": items}
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    assert result.items[0]["type"] == "message"
    assert result.text == "Tool result: total 42"


async def test_trailing_compaction_trigger_streams_a_compaction_item(fake_upstream, session, auth):
    body = {**responses_body(), "input": [user_message("long history"), {"type": "compaction_trigger"}]}
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    (item,) = result.items
    assert item["type"] == "compaction" and item["encrypted_content"].startswith("gAAAA")
    assert result.terminal["type"] == "response.completed"


async def test_missing_instructions_are_fine_but_must_be_a_string_when_sent(fake_upstream, session, auth):
    body = responses_body()
    del body["instructions"]
    assert (await post_responses(session, fake_upstream.base_url, body, bearer(auth))).status == 200
    bad = await post_responses(session, fake_upstream.base_url, {**body, "instructions": ["x"]}, bearer(auth))
    assert bad.status == 400 and bad.json()["error"]["param"] == "instructions"


@pytest.mark.parametrize(
    ("change", "message", "param"),
    [
        ({"store": True}, "Store must be set to false", "store"),
        ({"store": None}, "Store must be set to false", "store"),
        ({"stream": False}, "Stream must be set to true", "stream"),
        *[
            ({name: 1}, f"Unsupported parameter: {name}", name)
            for name in (
                "max_output_tokens",
                "temperature",
                "top_p",
                "metadata",
                "user",
                "truncation",
                "safety_identifier",
                "prompt_cache_retention",
            )
        ],
    ],
)
async def test_backend_rejects_what_the_real_one_rejects(
    fake_upstream, session, auth, change, message, param
):
    body = {k: v for k, v in {**responses_body(), **change}.items() if v is not None}
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    assert result.status == 400
    error = result.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == message and error["param"] == param


async def test_invalid_json_and_unknown_models_are_rejected(fake_upstream, session, auth):
    broken = await post_responses(session, fake_upstream.base_url, b"{not json", bearer(auth))
    assert broken.status == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    unknown = await post_responses(
        session, fake_upstream.base_url, responses_body(model="gpt-4o"), bearer(auth)
    )
    assert unknown.status == 400
    assert "not supported when using Codex with a ChatGPT account" in unknown.json()["error"]["message"]
    spark = await post_responses(
        session, fake_upstream.base_url, responses_body(model="gpt-5.3-codex-spark"), bearer(auth)
    )
    assert spark.status == 400
    pro = await fake_upstream.create_account("acc_pro", plan_type="pro")
    assert (
        await post_responses(
            session, fake_upstream.base_url, responses_body(model="gpt-5.3-codex-spark"), bearer(pro)
        )
    ).status == 200


async def test_unknown_keys_pass_and_string_input_is_accepted(fake_upstream, session, auth):
    body = {
        **responses_body(),
        "input": "plain text",
        "client_metadata": {"x": "y"},
        "text": {"verbosity": "low"},
    }
    result = await post_responses(session, fake_upstream.base_url, body, bearer(auth))
    assert result.status == 200 and result.terminal["type"] == "response.completed"


async def test_previous_response_id_never_resolves_over_http(fake_upstream, session, auth):
    first = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    anchor = first.terminal["response"]["id"]
    follow = await post_responses(
        session, fake_upstream.base_url, responses_body(previous_response_id=anchor), bearer(auth)
    )
    assert follow.status == 400
    assert follow.json()["error"] == {
        "type": "invalid_request_error",
        "code": "previous_response_not_found",
        "param": "previous_response_id",
        "message": f"Previous response with id '{anchor}' not found.",
    }
