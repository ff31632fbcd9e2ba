"""Transcription: multipart audio forwarded to the upstream /transcribe with pooling and failover."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from tests.support.proxy import proxy_settings, serve_proxy

# Transcription forwarding: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

AUDIO = b"RIFF" + b"\x00" * 2000


def form(audio: bytes = AUDIO, **fields) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", audio, filename="voice.wav", content_type="audio/wav")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def post_form(proxy, path: str, data: aiohttp.FormData) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.post(proxy.url + path, data=data) as answer:
        return answer.status, answer.content_type, await answer.read()


async def test_codex_transcribe_is_forwarded_with_its_fields(proxy):
    await proxy.add_accounts("acc_voice")
    status, kind, body = await post_form(proxy, "/backend-api/transcribe", form(prompt="codex words"))
    assert status == 200 and kind == "application/json"
    assert orjson.loads(body) == {"text": f"Fake transcription of {len(AUDIO)} bytes from voice.wav."}
    logged = (await proxy.fake.requests(path="/backend-api/transcribe"))[-1]
    assert logged["account"] == "acc_voice"
    assert logged["body"] == {
        "fields": {"prompt": "codex words"},
        "file": {"filename": "voice.wav", "bytes": len(AUDIO)},
    }
    rows = await proxy.request_logs(1)
    assert rows[0]["route"] == "/backend-api/transcribe" and rows[0]["status"] == 200


async def test_openai_sdk_transcription(proxy):
    await proxy.add_accounts("acc_voice")
    client = AsyncOpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
    try:
        result = await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", AUDIO))
        assert result.text == f"Fake transcription of {len(AUDIO)} bytes from a.wav."
        plain = await client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", AUDIO), response_format="text"
        )
        assert plain.strip() == result.text
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(
                model="gpt-4o-transcribe", file=("a.wav", AUDIO), response_format="srt"
            )
        assert caught.value.body["param"] == "response_format"
    finally:
        await client.close()


async def test_transcription_fails_over_to_a_working_account(proxy):
    await proxy.add_accounts("acc_bad_1", "acc_bad_2", failure_rate=1.0, failure_status=503)
    await proxy.add_accounts("acc_good")
    for _ in range(3):
        status, _, body = await post_form(proxy, "/v1/audio/transcriptions", form(model="gpt-4o-transcribe"))
        assert status == 200, body
    assert {
        r["account"]
        for r in await proxy.fake.requests(path="/backend-api/transcribe")
        if r.get("status") == 200
    } == {"acc_good"}


async def test_missing_audio_is_a_400(proxy):
    await proxy.add_accounts("acc_voice")
    data = aiohttp.FormData()
    data.add_field("prompt", "nothing")
    status, _, body = await post_form(proxy, "/backend-api/transcribe", data)
    assert status == 400 and b"'file'" in body


async def test_audio_over_the_limit_is_a_clear_413(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(tmp_path, database_url, fake_upstream, transcription_max_bytes="4096")
    async with serve_proxy(settings, fake_upstream) as proxy:
        await proxy.add_accounts("acc_voice")
        for path in ("/backend-api/transcribe", "/v1/audio/transcriptions"):
            status, _, body = await post_form(proxy, path, form(b"\x00" * 8000, model="gpt-4o-transcribe"))
            assert status == 413, body
            assert b"request_too_large" in body and b"4096" in body
        assert await proxy.fake.requests(path="/backend-api/transcribe") == []
