"""The fake's test hooks (stats, config, reset, request log, accounts) and its subprocess/CLI mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.demo.fake_upstream.__main__ import main
from server.demo.fake_upstream.client import bearer, post_responses, responses_body
from server.demo.fake_upstream.control import HookError
from server.demo.fake_upstream.runner import FakeUpstreamProcess
from tests.support.live_server import ROOT


async def test_stats_count_requests_tokens_statuses_and_transports(fake_upstream, session):
    one = await fake_upstream.create_account("acc_1")
    two = await fake_upstream.create_account("acc_2", rate_limited=True)
    ok = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(one))
    await post_responses(session, fake_upstream.base_url, responses_body(), bearer(two))
    async with session.get(fake_upstream.base_url + "/wham/usage", headers=bearer(one)) as answer:
        assert answer.status == 200
    stats = await fake_upstream.stats()
    first = stats["accounts"]["acc_1"]
    assert first["requests"] == 1 and first["statuses"] == {"200": 1} and first["transports"] == {"http": 1}
    assert first["tokens_in"] == ok.usage["input_tokens"] and first["tokens_out"] == ok.usage["output_tokens"]
    assert first["routes"] == {"/backend-api/codex/responses": 1, "/backend-api/wham/usage": 1}
    assert first["primary_used_tokens"] == ok.usage["total_tokens"]
    assert stats["accounts"]["acc_2"]["statuses"] == {"429": 1}
    assert stats["totals"]["requests"] == 2 and stats["totals"]["statuses"] == {"200": 1, "429": 1}


async def test_config_merges_defaults_and_accounts_and_rejects_unknown_keys(fake_upstream, session):
    await fake_upstream.configure(defaults={"reply_text": "default reply"})
    await fake_upstream.configure(accounts={"acc_x": {"deltas": 1}})
    config = await fake_upstream.configure(accounts={"acc_x": {"reply_text": "x reply"}})
    assert config["defaults"] == {"reply_text": "default reply"}
    assert config["accounts"] == {"acc_x": {"deltas": 1, "reply_text": "x reply"}}
    assert (await fake_upstream.config())["accounts"]["acc_x"]["deltas"] == 1
    x, y = await fake_upstream.create_account("acc_x"), await fake_upstream.create_account("acc_y")
    assert (
        await post_responses(session, fake_upstream.base_url, responses_body(), bearer(x))
    ).text == "x reply"
    assert (
        await post_responses(session, fake_upstream.base_url, responses_body(), bearer(y))
    ).text == "default reply"
    with pytest.raises(HookError, match="unknown behaviour keys"):
        await fake_upstream.configure(defaults={"no_such_switch": True})
    with pytest.raises(HookError, match="failure_rate"):
        await fake_upstream.configure(accounts={"acc_x": {"failure_rate": 2}})
    with pytest.raises(HookError, match="unknown config keys"):
        await fake_upstream._call("POST", "/__config", {"bogus": 1})
    assert (await fake_upstream.config())["accounts"]["acc_x"] == {"deltas": 1, "reply_text": "x reply"}


async def test_reset_clears_counters_logs_config_and_spent_tokens(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_reset", reply_text="custom")
    await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    refresh = {
        "grant_type": "refresh_token",
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "refresh_token": auth["tokens"]["refresh_token"],
    }
    async with session.post(fake_upstream.auth_url + "/oauth/token", json=refresh) as answer:
        assert answer.status == 200
    await fake_upstream.reset()
    assert (await fake_upstream.stats())["accounts"] == {}
    assert await fake_upstream.requests() == []
    assert (await fake_upstream.config())["accounts"] == {}
    async with session.post(fake_upstream.auth_url + "/oauth/token", json=refresh) as answer:
        assert answer.status == 200  # the spent-token memory is gone too
    again = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    assert again.text == "Hello from fake account acc_reset."  # the account re-registers from its token


async def test_request_log_records_headers_bodies_accounts_and_statuses(fake_upstream, session):
    auth = await fake_upstream.create_account("acc_log")
    headers = {**bearer(auth), "originator": "codex_exec", "session_id": "s-1", "X-Codex-Turn-Metadata": "{}"}
    for text in ("one", "two", "three"):
        await post_responses(session, fake_upstream.base_url, responses_body(text), headers)
    await post_responses(session, fake_upstream.base_url, responses_body(temperature=1), headers)
    entries = await fake_upstream.requests(limit=2)
    assert len(entries) == 2
    last = entries[-1]
    assert last["path"] == "/backend-api/codex/responses" and last["method"] == "POST"
    assert last["status"] == 400 and last["account"] == "acc_log" and last["transport"] == "http"
    assert last["body"]["temperature"] == 1
    assert last["headers"]["originator"] == "codex_exec" and last["headers"]["session_id"] == "s-1"
    assert last["headers"]["x-codex-turn-metadata"] == "{}"
    assert last["headers"]["chatgpt-account-id"] == "acc_log"
    assert entries[0]["body"]["input"][0]["content"][0]["text"] == "three"
    assert len(await fake_upstream.requests(limit=100, account="acc_log")) == 4
    assert await fake_upstream.requests(account="acc_nobody") == []


async def test_accounts_hook_returns_a_usable_auth_json(fake_upstream, session):
    auth = await fake_upstream.create_account(email="someone@example.com", plan_type="pro", deltas=1)
    assert set(auth) == {"OPENAI_API_KEY", "tokens", "last_refresh"}
    assert set(auth["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
    result = await post_responses(session, fake_upstream.base_url, responses_body(), bearer(auth))
    assert result.status == 200 and len([t for t in result.types if t.endswith("output_text.delta")]) == 1
    assert (await fake_upstream.account_stats(auth["tokens"]["account_id"]))["email"] == "someone@example.com"
    with pytest.raises(HookError):
        await fake_upstream.expire_tokens("acc_unknown")


async def test_subprocess_mode_serves_the_same_fake(fake_upstream_process, session):
    auth = await fake_upstream_process.create_account("acc_proc")
    result = await post_responses(session, fake_upstream_process.base_url, responses_body(), bearer(auth))
    assert result.status == 200 and result.text == "Hello from fake account acc_proc."
    assert (await fake_upstream_process.account_stats("acc_proc"))["requests"] == 1
    assert fake_upstream_process.process is not None and fake_upstream_process.process.poll() is None


async def test_fake_upstream_script_starts_on_the_requested_port_and_stops_on_sigterm():
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "fake-upstream"), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("fake-upstream listening on http://127.0.0.1:")
        control = FakeUpstreamProcess()
        control.url = line.rsplit(" ", 1)[1].strip()
        assert await control.healthy()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_cli_refuses_non_loopback_hosts(capsys):
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "loopback only" in capsys.readouterr().err


def test_module_runs_with_python_dash_m():
    help_text = subprocess.run(
        [sys.executable, "-m", "server.demo.fake_upstream", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--port" in help_text and "--host" in help_text
