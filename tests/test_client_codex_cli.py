"""The real Codex CLI (`codex exec`, npm @openai/codex) against the fake upstream and through the proxy."""

from __future__ import annotations

import pytest

from tests.clients.codex_cli import run_codex_exec_async
from tests.support.proxy import CODEX_ROUTE

# The Codex CLI as a client: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

pytestmark = pytest.mark.slow


async def test_codex_exec_runs_a_tool_call_directly_against_the_fake(fake_upstream, tmp_path):
    auth = await fake_upstream.create_account("acc_cli_direct")
    run = await run_codex_exec_async(
        "CALL_TOOL and tell me what it printed",
        base_url=fake_upstream.base_url + "/codex",
        auth_json=auth,
        token_url=fake_upstream.auth_url + "/oauth/token",
        cwd=tmp_path,
    )
    assert run.completed, run.describe()
    [command] = run.items("command_execution")
    assert "fake-tool-call" in command["aggregated_output"]
    assert "fake-tool-call" in run.final_message
    assert (await fake_upstream.account_stats("acc_cli_direct"))["requests"] == 2


async def test_codex_exec_through_the_proxy_with_a_tool_call_over_http(proxy, tmp_path):
    await proxy.add_accounts("acc_pool_1", "acc_pool_2")
    run = await run_codex_exec_async(
        "CALL_TOOL and tell me what it printed",
        base_url=proxy.url + "/backend-api/codex",
        cwd=tmp_path,
    )
    assert run.completed, run.describe()
    [command] = run.items("command_execution")
    assert "fake-tool-call" in command["aggregated_output"]
    assert "fake-tool-call" in run.final_message
    turns = await proxy.fake.requests(path=CODEX_ROUTE)
    assert len(turns) == 2
    assert len({turn["account"] for turn in turns}) == 1  # the session stuck to one pooled account
    assert turns[1]["body"]["input"][-1]["type"] == "function_call_output"
    rows = await proxy.request_logs(2)
    assert [row["status"] for row in rows] == [200, 200]
    # The first turn is placed (an account with room for a long conversation), the next one sticks to it.
    assert sorted(row["routing"] for row in rows) == ["headroom", "sticky"]


async def test_codex_exec_accepts_the_proxys_model_catalog(proxy, tmp_path):
    await proxy.add_accounts("acc_pool_1")
    run = await run_codex_exec_async("Say hi", base_url=proxy.url + "/backend-api/codex", cwd=tmp_path)
    assert run.completed, run.describe()
    # A missing or undecodable catalog makes the CLI report "Model metadata for `…` not found".
    assert not [e for e in run.errors() if "metadata" in e.lower()], run.errors()
    assert await proxy.fake.requests(path="/backend-api/codex/models") == []  # served from the registry
