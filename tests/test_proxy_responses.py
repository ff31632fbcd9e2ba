"""The Responses routes end to end: pass-through streaming, JSON answers, headers, bad input."""

from __future__ import annotations

import aiohttp
import orjson

from server.demo.fake_upstream.client import parse_sse
from tests.support.keys import create_key, set_key_auth
from tests.support.proxy import codex_body

# Responses streaming: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]


async def test_codex_route_streams_the_upstream_events_unchanged(proxy):
    [account] = await proxy.add_accounts("acc_1")
    answer = await proxy.post("/backend-api/codex/responses", codex_body("hi"), {"session-id": "s1"})
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    types = [e["type"] for e in answer.events()]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert answer.text()
    assert answer.headers["x-codex-lb-account"] == str(account["id"])  # its id, as logs and the API say
    assert answer.headers["x-codex-lb-attempts"] == "1"
    assert float(answer.headers["x-codex-lb-overhead-ms"]) >= 0
    assert "x-codex-primary-used-percent" in answer.headers


async def test_upstream_gets_the_account_token_not_the_clients(proxy):
    imported = await proxy.add_accounts("acc_1")
    # With API-key auth on, a client behind a reverse proxy (X-Forwarded-For) is served.
    key = await create_key(proxy.url)
    await set_key_auth(proxy.url, True)
    answer = await proxy.post(
        "/backend-api/codex/responses",
        codex_body("hi"),
        {
            "Authorization": f"Bearer {key['key']}",
            "session-id": "s1",
            "x-codex-turn-metadata": '{"a":1}',
            "originator": "codex_exec",
            "X-Forwarded-For": "10.0.0.1",
        },
    )
    assert answer.status == 200
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["chatgpt-account-id"] == imported[0]["chatgpt_account_id"]
    assert key["key"] not in headers["authorization"]
    assert headers["session-id"] == "s1"
    assert headers["x-codex-turn-metadata"] == '{"a":1}'
    assert headers["originator"] == "codex_exec"
    assert "x-forwarded-for" not in headers
    assert sent["body"]["store"] is False
    if sent["transport"] == "websocket":  # gpt-5.4 prefers upstream WebSockets: frames carry no stream
        assert "stream" not in sent["body"] and sent["body"]["type"] == "response.create"
    else:
        assert sent["body"]["stream"] is True


async def test_v1_non_streaming_answers_one_response_with_output_rebuilt(proxy):
    await proxy.add_accounts("acc_1")
    answer = await proxy.post(
        "/v1/responses",
        {"model": "gpt-5.4", "input": "Say hi", "stream": False, "temperature": 0.2, "max_output_tokens": 50},
    )
    assert answer.status == 200, answer.raw
    body = answer.json()
    assert body["object"] == "response" and body["status"] == "completed"
    message = next(item for item in body["output"] if item["type"] == "message")
    assert message["content"][0]["text"]
    assert body["usage"]["output_tokens"] > 0
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert "temperature" not in sent and "max_output_tokens" not in sent
    assert sent["input"][0]["content"][0] == {"type": "input_text", "text": "Say hi"}
    assert sent["instructions"] == ""
    assert sent["prompt_cache_key"].startswith("clb_")


async def test_v1_hoists_system_messages_into_instructions(proxy):
    await proxy.add_accounts("acc_1")
    body = {
        "model": "gpt-5.4",
        "stream": True,
        "input": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
    }
    answer = await proxy.post("/v1/responses", body)
    assert answer.status == 200
    assert answer.events()[-1]["type"] == "response.completed"
    sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert sent["instructions"] == "Be brief."
    assert [item["role"] for item in sent["input"]] == ["user"]


async def test_compact_routes_return_the_upstream_json(proxy):
    await proxy.add_accounts("acc_1")
    for path in ("/backend-api/codex/responses/compact", "/v1/responses/compact"):
        answer = await proxy.post(
            path, {"model": "gpt-5.4", "input": [], "instructions": "x", "store": False}
        )
        assert answer.status == 200, answer.raw
        assert answer.json()["output"][0]["type"] == "compaction"


async def test_bad_input_gets_openai_error_json(proxy):
    await proxy.add_accounts("acc_1")
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (orjson.dumps({"input": "hi"}), 400, "missing_required_parameter"),
        (orjson.dumps({"model": "gpt-5.4", "input": 42}), 400, "invalid_request_error"),
        (orjson.dumps({"model": "gpt-5.4", "input": "x", "tools": "nope"}), 400, "invalid_request_error"),
    ]
    for raw, status, code in cases:
        for path in ("/v1/responses", "/backend-api/codex/responses"):
            answer = await proxy.post(path, raw, {"content-type": "application/json"})
            assert answer.status == status, (path, raw, answer.raw)
            error = answer.json()["error"]
            assert error["code"] == code and error["message"] and error["type"]


async def test_oversized_body_is_a_413_in_openai_shape(proxy):
    big = b'{"model": "gpt-5.4", "input": "' + b"x" * (proxy.settings.request_max_bytes + 10) + b'"}'
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/v1/responses", data=big) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "request_too_large"


async def test_upstream_client_errors_pass_through_with_their_message(proxy):
    await proxy.add_accounts("acc_1")  # plus: the backend refuses the Pro-only model
    answer = await proxy.post("/backend-api/codex/responses", codex_body("hi", model="gpt-5.3-codex-spark"))
    assert answer.status == 400
    assert "not supported" in answer.json()["error"]["message"]
    assert (
        len(await proxy.fake.requests(path="/backend-api/codex/responses")) == 1
    )  # no failover for a bad request


async def test_unknown_model_is_model_not_found_before_any_account_is_used(proxy):
    await proxy.add_accounts("acc_1")
    for path, body in (
        ("/backend-api/codex/responses", codex_body("hi", model="gpt-unknown-model")),
        ("/v1/responses", {"model": "gpt-unknown-model", "input": "hi"}),
        ("/v1/responses/compact", {"model": "gpt-unknown-model", "input": []}),
    ):
        answer = await proxy.post(path, body)
        assert answer.status == 404, (path, answer.raw)
        error = answer.json()["error"]
        assert error["code"] == "model_not_found" and error["param"] == "model"
        assert "gpt-unknown-model" in error["message"]
    assert await proxy.fake.requests(path="/backend-api/codex/responses") == []


async def test_no_accounts_is_a_503_that_says_so(proxy):
    answer = await proxy.post("/backend-api/codex/responses", codex_body("hi"))
    assert answer.status == 503
    error = answer.json()["error"]
    assert error["code"] == "no_accounts" and "add one" in error["message"]


async def test_sse_parse_helper_reads_the_stream():  # keeps the helper honest for the other tests
    raw = b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
    assert parse_sse(raw) == [{"type": "response.created", "sequence_number": 0}]


async def test_compressed_request_bodies_are_accepted(proxy):
    import gzip

    import zstandard

    await proxy.add_accounts("acc_1")
    raw = orjson.dumps(codex_body("compressed"))
    for encoding, data in (("zstd", zstandard.ZstdCompressor().compress(raw)), ("gzip", gzip.compress(raw))):
        answer = await proxy.post(
            "/backend-api/codex/responses",
            data,
            {"content-encoding": encoding, "content-type": "application/json"},
        )
        assert answer.status == 200, answer.raw
        sent = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]
        assert sent["body"]["input"][-1]["content"][0]["text"] == "compressed"
        assert "content-encoding" not in {k.lower() for k in sent["headers"]}


async def test_compression_bombs_and_garbage_are_refused(proxy):
    import zstandard

    await proxy.add_accounts("acc_1")
    bomb = zstandard.ZstdCompressor().compress(b"x" * (proxy.settings.request_max_bytes + 1))
    answer = await proxy.post("/v1/responses", bomb, {"content-encoding": "zstd"})
    assert answer.status == 413 and answer.json()["error"]["code"] == "request_too_large"
    answer = await proxy.post("/v1/responses", b"not zstd at all", {"content-encoding": "zstd"})
    assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_body"
    answer = await proxy.post("/v1/responses", b"{}", {"content-encoding": "br"})
    assert answer.status == 415
