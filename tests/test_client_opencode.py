"""The real OpenCode CLI (`opencode run`, headless) through the proxy to the fake upstream."""

from __future__ import annotations

import pytest

from tests.clients.opencode_cli import (
    OpenCodeNotInstalled,
    chat_completions_config,
    opencode_binary,
    readme_config,
    run_opencode,
)
from tests.support.keys import create_key, set_key_auth

# OpenCode as a client: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

try:
    opencode_binary()
except OpenCodeNotInstalled as exc:  # pragma: no cover - depends on `npm ci --prefix tests/clients`
    pytestmark = pytest.mark.skip(reason=str(exc))


@pytest.fixture
async def key(proxy) -> str:
    """OpenCode as the README sets it up: API-key auth on, the key in CODEX_LB_API_KEY."""
    created = await create_key(proxy.url, name="opencode")
    await set_key_auth(proxy.url, True)
    return created["key"]


BASH_CALL = '[[tool:bash {"command": "echo fake-tool-call", "description": "echo"}]]'


async def test_opencode_with_the_readme_config_runs_a_prompt(proxy, key):
    await proxy.add_accounts("acc_opencode", reply_text="OK from the pool.")
    run = await run_opencode("Reply with OK only.", readme_config(proxy.url + "/v1"), api_key=key)
    assert run.returncode == 0, run.stderr
    assert "OK from the pool." in run.text
    rows = await proxy.request_logs(2)  # the answer and OpenCode's title request (small_model)
    assert {(r["route"], r["status"]) for r in rows} == {("/v1/responses", 200)}
    assert {r["model"] for r in rows} == {"gpt-5.4", "gpt-5.4-mini"}


async def test_opencode_runs_a_tool_and_sends_its_result_back(proxy, key):
    await proxy.add_accounts("acc_opencode")
    run = await run_opencode(BASH_CALL, readme_config(proxy.url + "/v1"), api_key=key)
    assert run.returncode == 0, run.stderr
    assert run.tool_outputs == ["fake-tool-call\n"]
    assert "Tool result: fake-tool-call" in run.text
    last = (await proxy.fake.requests(path="/backend-api/codex/responses"))[-1]["body"]
    assert last["input"][-1]["type"] == "function_call_output"


async def test_opencode_over_chat_completions_with_a_tool_round_trip(proxy, key):
    await proxy.add_accounts("acc_opencode")
    run = await run_opencode(BASH_CALL, chat_completions_config(proxy.url + "/v1"), api_key=key)
    assert run.returncode == 0, run.stderr
    assert run.tool_outputs == ["fake-tool-call\n"]
    assert "Tool result: fake-tool-call" in run.text
    rows = await proxy.request_logs(3)
    assert {r["route"] for r in rows} == {"/v1/chat/completions"} and {r["status"] for r in rows} == {200}
