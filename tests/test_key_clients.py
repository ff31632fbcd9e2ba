"""Real clients with API-key auth on: the OpenAI SDK and the Codex CLI (`env_key`) as the README shows."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from tests.clients.codex_cli import run_codex_exec_async
from tests.support.keys import create_key, set_key_auth
from tests.support.proxy import CODEX_ROUTE


async def test_openai_sdk_with_a_key(proxy):
    await proxy.add_accounts("acc_sdk", reply_text="Hi from the pool.")
    key = await create_key(proxy.url, limits=[{"quantity": "requests", "window": "day", "max": 1}])
    await set_key_auth(proxy.url, True)
    client = AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key["key"], max_retries=0)
    try:
        response = await client.responses.create(model="gpt-5.4", input="Say hi")
        assert response.output_text == "Hi from the pool."
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="gpt-5.4", input="Say hi again")
        assert limited.value.code == "api_key_limit_reached"
        assert "not an OpenAI limit" in limited.value.message
        wrong = AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-clb-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await wrong.responses.create(model="gpt-5.4", input="Say hi")
        await wrong.close()
    finally:
        await client.close()


@pytest.mark.slow
async def test_codex_cli_with_env_key_when_key_auth_is_on(proxy, tmp_path):
    await proxy.add_accounts("acc_cli")
    key = await create_key(proxy.url)
    await set_key_auth(proxy.url, True)
    # requires_openai_auth = true makes the CLI send its own ChatGPT token: refused with key auth on.
    refused = await run_codex_exec_async(
        "Reply with OK only.", base_url=proxy.url + "/backend-api/codex", cwd=tmp_path / "a", check=False
    )
    assert not refused.completed
    assert await proxy.fake.requests(path=CODEX_ROUTE) == []
    # env_key = "CODEX_LB_API_KEY" sends the key instead.
    run = await run_codex_exec_async(
        "Reply with OK only.",
        base_url=proxy.url + "/backend-api/codex",
        api_key=key["key"],
        cwd=tmp_path / "b",
    )
    assert run.completed, run.describe()
    logs = await proxy.request_logs(1)
    assert {row["api_key_id"] for row in logs if row["status"] == 200} == {key["id"]}
