"""The Codex CLI harness drives the real `codex exec` against a local capture server.

These prove the harness (config, auth, offline flags, event parsing) and pin the wire facts in
CODEX_WIRE_NOTES.md that the proxy and the fake upstream rely on.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.clients.capture_server import CaptureServer
from tests.clients.codex_cli import (
    CLIENTS_DIR,
    ChatGPTLogin,
    CodexTimeout,
    codex_binary,
    codex_version,
    run_codex_exec_async,
)


def test_pinned_cli_is_installed_with_its_native_binary():
    pinned = json.loads((CLIENTS_DIR / "package.json").read_text())["dependencies"]["@openai/codex"]
    assert codex_binary().is_file()
    assert codex_version() == pinned


async def test_http_turn_runs_the_shell_tool_and_sends_its_output_back():
    login = ChatGPTLogin(account_id="acct-http")
    async with CaptureServer(shell_command="echo hi") as server:
        run = await run_codex_exec_async(
            "Run echo hi.", base_url=server.codex_base_url, auth_json=login.auth_json()
        )

    [command] = run.items("command_execution")
    assert command["exit_code"] == 0 and command["aggregated_output"] == "hi\n"
    assert run.final_message == "OK"
    first, second = server.responses_requests()
    assert (first.method, second.method) == ("POST", "POST")
    assert first.header("Authorization") == f"Bearer {login.access_token()}"
    assert first.header("chatgpt-account-id") == "acct-http"
    assert first.header("originator") == "codex_exec"
    assert first.header("Content-Encoding") == "zstd"
    assert first.body["stream"] is True and first.body["store"] is False
    call = next(i for i in second.body["input"] if i["type"] == "function_call")
    output = next(i for i in second.body["input"] if i["type"] == "function_call_output")
    assert call["name"] == "exec_command" and json.loads(call["arguments"])["cmd"] == "echo hi"
    assert output["call_id"] == call["call_id"] and output["output"].endswith("hi\n")
    assert second.header("x-codex-turn-state") == "capture-turn-state"
    assert ("GET", "/backend-api/wham/accounts/check") in run.side_requests


async def test_websocket_turn_prewarms_then_continues_on_one_socket():
    async with CaptureServer(shell_command="echo hi") as server:
        run = await run_codex_exec_async("Run echo hi.", base_url=server.codex_base_url, websockets=True)

    assert run.items("command_execution")[0]["aggregated_output"] == "hi\n"
    [socket] = server.responses_requests()
    assert socket.websocket
    assert socket.header("openai-beta") == "responses_websockets=2026-02-06"
    prewarm, turn, tool_output = socket.frames
    assert prewarm["type"] == "response.create" and prewarm["generate"] is False
    assert turn["previous_response_id"] == "resp_capture1" and "generate" not in turn
    assert tool_output["previous_response_id"] == "resp_capture2"
    assert [i["type"] for i in tool_output["input"]] == ["function_call_output"]


async def test_websocket_upgrade_refused_with_426_falls_back_to_http():
    async with CaptureServer(reject_websocket_status=426) as server:
        run = await run_codex_exec_async("Say OK.", base_url=server.codex_base_url, websockets=True)

    assert run.final_message == "OK"
    assert [(r.websocket, r.method) for r in server.responses_requests()] == [(True, "GET"), (False, "POST")]


async def test_api_key_mode_sends_the_key_and_no_chatgpt_identity():
    async with CaptureServer() as server:
        run = await run_codex_exec_async("Say OK.", base_url=server.codex_base_url, api_key="sk-clb-test")

    assert run.final_message == "OK"
    [request] = server.responses_requests()
    assert request.header("Authorization") == "Bearer sk-clb-test"
    assert request.header("chatgpt-account-id") is None
    assert request.header("Content-Encoding") is None


async def test_a_hung_upstream_ends_in_a_timeout_and_the_cli_is_killed():
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(CodexTimeout, match="timed out after 3"):
            await run_codex_exec_async(
                "Say OK.", base_url=f"http://127.0.0.1:{port}/backend-api/codex", timeout=3
            )
    finally:
        server.close()
