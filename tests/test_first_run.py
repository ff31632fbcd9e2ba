"""A newcomer's first minutes: every mistake answers one clear line, and start-up says where things are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from server.config import Settings
from server.runtime.startup import unknown_variable_warnings
from tests.support.live_server import ROOT, ServerProcess

CODEX_LB = str(Path(sys.executable).parent / "codex-lb")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_LB_")}
    env.update(extra)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["PORT", "WORKERS"])
def test_a_port_or_worker_count_that_is_no_number_is_one_line(tmp_path, name):
    env = _clean_env(**{f"CODEX_LB_{name}": "abc", "CODEX_LB_DATA_DIR": str(tmp_path)})
    result = _run([str(ROOT / "scripts/serve")], env, ROOT)
    assert result.returncode == 2
    assert result.stderr == f"codex-lb: configuration error: CODEX_LB_{name}='abc' is not a whole number\n"


def test_a_mistyped_variable_is_named_with_the_closest_setting(tmp_path):
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path),
        "CODEX_LB_UPSTREM_BASE_URL": "http://x",
        "CODEX_LB_API_KEY": "k",
    }
    assert unknown_variable_warnings(Settings.load(env, cwd=tmp_path)) == [
        "codex-lb: warning: CODEX_LB_UPSTREM_BASE_URL is not a codex-lb setting and is ignored; "
        "did you mean CODEX_LB_UPSTREAM_BASE_URL?"
    ]
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path),
        "CODEX_LB_ZZZ": "1",
        "CODEX_LB_USAGE_POLL_INTERVAL_SECONDS": "5",
    }
    assert unknown_variable_warnings(Settings.load(env, cwd=tmp_path)) == [
        "codex-lb: warning: CODEX_LB_ZZZ is not a codex-lb setting and is ignored"
    ]


def test_the_cli_warns_about_a_mistyped_variable(tmp_path):
    env = _clean_env(CODEX_LB_DATA_DIR=str(tmp_path), CODEX_LB_LOG_LEVL="debug")
    result = _run([CODEX_LB, "keys", "list"], env, tmp_path)
    assert result.returncode == 0
    assert result.stderr == (
        "codex-lb: warning: CODEX_LB_LOG_LEVL is not a codex-lb setting and is ignored; "
        "did you mean CODEX_LB_LOG_LEVEL?\n"
    )


@pytest.mark.parametrize("command", [["accounts", "list"], ["keys", "list"]])
def test_an_unusable_data_dir_is_one_line_for_operator_commands(tmp_path, command):
    (tmp_path / "file").write_text("not a directory")
    data_dir = tmp_path / "file" / "data"
    result = _run([CODEX_LB, *command], _clean_env(CODEX_LB_DATA_DIR=str(data_dir)), tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"codex-lb: configuration error: CODEX_LB_DATA_DIR={data_dir}: cannot create it (Not a directory)\n"
    )


def test_a_corrupt_key_file_is_one_line_for_operator_commands(tmp_path):
    (tmp_path / "encryption.key").write_text("c2hvcnQ=\n")
    result = _run([CODEX_LB, "accounts", "list"], _clean_env(CODEX_LB_DATA_DIR=str(tmp_path)), tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"codex-lb: configuration error: CODEX_LB_ENCRYPTION_KEY_FILE={tmp_path / 'encryption.key'}: "
        "expected 32 bytes of base64, found 5\n"
    )


def test_the_container_defaults_need_the_explicit_signal(tmp_path):
    # A dev container has /.dockerenv or Kubernetes variables; only CODEX_LB_IN_CONTAINER=1 counts.
    settings = Settings.load({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, cwd=tmp_path)
    assert settings.in_container is False
    assert settings.data_dir == Path.home() / ".codex-lb" and settings.host == "127.0.0.1"


async def test_unknown_paths_answer_a_404_naming_the_path(live_server):
    served = (
        "codex-lb serves /v1/* (OpenAI API), /backend-api/codex/* (Codex CLI), /api/* (dashboard API, "
        "described at /api/openapi.json) and /health/*."
    )
    async with aiohttp.ClientSession() as session:
        for path in ("/nothing-here", "/api/nothing-here", "/v1/nothing-here"):
            async with session.get(live_server.url + path) as response:
                assert response.status == 404
                assert await response.json() == {
                    "error": {
                        "message": f"Nothing is served at GET {path}: {served}",
                        "type": "invalid_request_error",
                        "code": "not_found",
                        "param": None,
                    }
                }


async def test_import_without_a_file_answers_the_one_error_shape(live_server):
    async with aiohttp.ClientSession() as session:
        for body in ({}, {"data": b"x", "headers": {"content-type": "multipart/form-data"}}):
            async with session.post(live_server.url + "/api/accounts/import", **body) as response:
                assert response.status == 400
                assert await response.json() == {
                    "error": {
                        "message": "Upload one or more Codex auth.json files in the multipart field "
                        '"auth_json".',
                        "type": "invalid_request_error",
                        "code": "invalid_request_error",
                        "param": "auth_json",
                    }
                }


async def test_an_empty_pool_names_the_command_that_adds_an_account(proxy):
    answer = await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"})
    assert answer.status == 503
    assert answer.json()["error"]["message"] == (
        "No ChatGPT accounts have been added to codex-lb yet: add one with `codex-lb accounts import "
        "~/.codex/auth.json` or `codex-lb accounts login` (or POST /api/accounts/import, or the dashboard)."
    )


@pytest.mark.slow
async def test_start_up_says_where_the_data_is_where_it_listens_and_what_to_do_next(tmp_path):
    server = ServerProcess({})
    server.env = _clean_env(CODEX_LB_DATA_DIR=str(tmp_path / "data"))  # nothing inherited
    server.start(tmp_path / "out.log")
    try:
        await server.wait_ready()
    finally:
        server.stop()
    lines = server.output().splitlines()
    assert f"codex-lb: data dir {tmp_path / 'data'} (database {tmp_path / 'data' / 'store.db'})" in lines
    assert (
        f"codex-lb: listening on http://127.0.0.1:{server.port} with 1 worker; "
        "stop it with Ctrl-C (or SIGTERM)" in lines
    )
    assert (
        "codex-lb: the pool has no accounts yet: add one with `codex-lb accounts import ~/.codex/auth.json` "
        "or `codex-lb accounts login`, or try everything first against a fake backend with `scripts/demo`"
    ) in lines


def test_fake_upstream_script_sets_itself_up_and_listens(tmp_path):
    proc = subprocess.Popen(
        [str(ROOT / "scripts/fake-upstream"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert first.startswith("fake-upstream listening on http://127.0.0.1:")
