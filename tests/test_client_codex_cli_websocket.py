"""The real Codex CLI (`supports_websockets = true`) through the proxy: WebSockets end to end."""

from __future__ import annotations

import logging

import pytest

from tests.clients.codex_cli import run_codex_exec_async
from tests.support.proxy import CODEX_ROUTE

# The Codex CLI over WebSockets: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

pytestmark = pytest.mark.slow


def _transport_errors(run) -> list[str]:
    """Errors the CLI reported other than the model catalog, which the proxy does not serve yet."""
    return [e for e in run.errors() if not e.startswith("Model metadata for")]


async def _frames(proxy) -> list[dict]:
    return [r for r in await proxy.fake.requests(limit=1000, path=CODEX_ROUTE) if r.get("kind") == "frame"]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_codex_exec_over_websockets_stays_on_sockets_and_one_account(proxy, tmp_path):
    await proxy.add_accounts("acc_cli_ws_1", "acc_cli_ws_2")
    logged = _Lines()
    loggers = [logging.getLogger("server.proxy.websocket"), logging.getLogger("server.proxy.access")]
    for logger in loggers:
        logger.addHandler(logged)
    try:
        run = await run_codex_exec_async(
            "CALL_TOOL and tell me what it printed",
            base_url=proxy.url + "/backend-api/codex",
            websockets=True,
            cwd=tmp_path,
        )
    finally:
        for logger in loggers:
            logger.removeHandler(logged)
    assert run.completed, run.describe()
    [command] = run.items("command_execution")
    assert "fake-tool-call" in command["aggregated_output"]
    assert "fake-tool-call" in run.final_message
    assert not _transport_errors(run), run.errors()
    totals = (await proxy.fake.stats())["totals"]
    assert totals["transports"] == {"websocket": 3}  # prewarm, the question, the tool result
    assert totals["ws_connections"] == 1
    frames = await _frames(proxy)
    assert len({frame["account"] for frame in frames}) == 1
    assert frames[0]["body"].get("generate") is False
    assert frames[2]["body"]["input"][-1]["type"] == "function_call_output"
    assert frames[2]["body"]["previous_response_id"]  # relayed as the CLI sent it, same socket
    rows = await proxy.request_logs(3)
    assert [row["transport"] for row in rows] == ["websocket"] * 3
    assert [row["status"] for row in rows] == [200] * 3
    assert len({row["account_id"] for row in rows}) == 1
    # What README's Codex CLI section tells users to look for in codex-lb's log.
    assert any(line.startswith("WebSocket /backend-api/codex/responses opened") for line in logged.lines)
    access = [line for line in logged.lines if line.startswith("access ")]
    assert len(access) == 3
    assert all("transport=websocket upstream=websocket" in line and "status=200" in line for line in access)


async def test_codex_exec_moves_to_another_account_mid_session_without_noticing(proxy, tmp_path):
    # Every account fails its third turn (once): the session's account takes the prewarm and the
    # question, then rejects the tool result, which must land on the other account in full.
    ids = ("acc_cli_move_1", "acc_cli_move_2")
    await proxy.add_accounts(*ids, failure_rate=0.34, failure_limit=1, failure_status=500)
    run = await run_codex_exec_async(
        "CALL_TOOL and tell me what it printed",
        base_url=proxy.url + "/backend-api/codex",
        websockets=True,
        cwd=tmp_path,
    )
    assert run.completed, run.describe()
    assert "fake-tool-call" in run.final_message
    assert not _transport_errors(run), run.errors()  # the CLI noticed nothing
    frames = await _frames(proxy)
    assert len(frames) == 4  # prewarm, question, the rejected tool result, its replay
    first, moved = frames[0]["account"], frames[-1]["account"]
    assert frames[1]["account"] == frames[2]["account"] == first and moved != first
    assert "previous_response_id" not in frames[-1]["body"]  # replayed in full on the new account
    kinds = [item.get("type") for item in frames[-1]["body"]["input"]]
    assert "function_call" in kinds and kinds[-1] == "function_call_output"
    assert (await proxy.fake.stats())["totals"]["transports"] == {"websocket": 4}
    rows = await proxy.request_logs(3)
    assert [row["status"] for row in rows] == [200] * 3
    assert rows[0]["attempts"] + rows[1]["attempts"] + rows[2]["attempts"] == 4
