"""Chat Completions through the proxy on the wire: failover, failures mid-stream, length, settlement."""

from __future__ import annotations

import time

import aiohttp
import orjson

# Chat Completions translation: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

ROUTE = "/v1/chat/completions"


def chat(text="hi", **extra) -> dict:
    return {"model": "gpt-5.4", "messages": [{"role": "user", "content": text}], **extra}


def chunks(raw: bytes) -> list:
    out = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            out.append("[DONE]" if block == b"data: [DONE]" else orjson.loads(block[6:]))
    return out


async def test_failover_before_content_is_invisible_to_chat_clients(proxy):
    await proxy.add_accounts("acc_busy", overload_in_stream=True)
    await proxy.add_accounts("acc_ok", reply_text="Served anyway.")
    for _ in range(3):
        answer = await proxy.post(ROUTE, chat(stream=True))
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
        got = chunks(answer.raw)
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in got[:-1]) == "Served anyway."
        assert got[-1] == "[DONE]"


async def test_a_stream_cut_after_content_ends_with_an_error_chunk_and_done(proxy):
    await proxy.add_accounts("acc_cut", cut_stream=True, cut_after_deltas=1, reply_text="one two three four")
    answer = await proxy.post(ROUTE, chat(stream=True))
    got = chunks(answer.raw)
    assert got[0]["choices"][0]["delta"]["role"] == "assistant"
    assert got[-2]["error"]["code"] == "stream_incomplete" and got[-1] == "[DONE]"
    rows = await proxy.request_logs(1)
    assert rows[0]["status"] == 502 and rows[0]["error_code"] == "stream_incomplete"


async def test_length_cap_reports_finish_reason_length(proxy):
    await proxy.add_accounts("acc_len", incomplete=True, reply_text="Cut short")
    answer = await proxy.post(ROUTE, chat(max_tokens=5))
    assert answer.status == 200
    assert answer.json()["choices"][0]["finish_reason"] == "length"
    assert answer.json()["choices"][0]["message"]["content"] == "Cut short"


async def test_failures_of_every_account_are_openai_errors(proxy):
    await proxy.add_accounts("acc_down", failure_rate=1.0, failure_status=500)
    answer = await proxy.post(ROUTE, chat())
    assert answer.status == 502
    assert set(answer.json()["error"]) >= {"message", "type", "code"}
    streamed = await proxy.post(ROUTE, chat(stream=True))
    assert streamed.status == 502 and streamed.json()["error"]["code"]  # nothing sent yet: a plain JSON error


async def test_chat_bad_json_and_missing_model_are_400s(proxy):
    for raw, code in ((b"{not json", "invalid_json"), (b'{"messages": []}', "missing_required_parameter")):
        answer = await proxy.post(ROUTE, raw, {"content-type": "application/json"})
        assert answer.status == 400 and answer.json()["error"]["code"] == code


async def test_chunks_reach_the_client_as_the_upstream_produces_them(proxy):
    await proxy.add_accounts(
        "acc_slow", reply_text="one two three four five", deltas=5, delta_interval_ms=250
    )
    arrivals = []
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + ROUTE, data=orjson.dumps(chat(stream=True))) as response:
            started = time.monotonic()
            async for line in response.content:
                if line.startswith(b"data: {") and b'"content"' in line:
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5
    # Not buffered: the first words arrive about a second before the last ones (4 gaps of 250 ms).
    assert arrivals[-1] - arrivals[0] > 0.6, arrivals
