"""`codex-lb codex-sessions retag` on a real Codex CLI 0.169 home (tests/golden/codex_sessions): the
session_meta provider and the thread index move to codex-lb and back, after a backup, with a count."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from server.cli import main

GOLDEN = Path(__file__).parent / "golden" / "codex_sessions"
ROLLOUT = "sessions/2026/12/01/rollout-2026-12-01T16-06-00-01a2325b-19bf-7c42-a82e-53ca8d551c70.jsonl"
OTHER = "sessions/2026/11/30/rollout-2026-11-30T09-00-00-0199aaaa-0000-7000-8000-000000000001.jsonl"
ARCHIVED = "archived_sessions/rollout-2026-10-01T08-00-00-0199bbbb-0000-7000-8000-000000000002.jsonl"


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    home = tmp_path / ".codex"
    rollout = GOLDEN / "rollout-openai.jsonl"
    for relative in (ROLLOUT, ARCHIVED):
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(rollout, home / relative)
    # A session of another provider (a local model) is left alone.
    (home / OTHER).parent.mkdir(parents=True, exist_ok=True)
    other = rollout.read_text().replace('"model_provider":"openai"', '"model_provider":"ollama"')
    (home / OTHER).write_text(other)
    os.utime(home / ROLLOUT, (1_700_000_000, 1_700_000_000))
    conn = sqlite3.connect(home / "state_5.sqlite")
    conn.executescript((GOLDEN / "state_5.sql").read_text())
    conn.close()
    return home


def providers(home: Path) -> dict[str, str]:
    found = {}
    for relative in (ROLLOUT, OTHER, ARCHIVED):
        first = json.loads((home / relative).read_text().splitlines()[0])
        found[relative] = first["payload"]["model_provider"]
    return found


def thread_providers(home: Path) -> list[str]:
    conn = sqlite3.connect(home / "state_5.sqlite")
    try:
        return [row[0] for row in conn.execute("SELECT model_provider FROM threads")]
    finally:
        conn.close()


def test_retag_moves_sessions_and_the_thread_index_to_codex_lb_and_back(codex_home, capsys):
    before = (codex_home / ROLLOUT).read_bytes()
    assert main(["codex-sessions", "retag", "--codex-home", str(codex_home)]) == 0
    out = capsys.readouterr().out
    assert "re-tagged 2 of 3 session files and 1 thread index rows from 'openai' to 'codex-lb'" in out
    assert providers(codex_home) == {ROLLOUT: "codex-lb", OTHER: "ollama", ARCHIVED: "codex-lb"}
    assert thread_providers(codex_home) == ["codex-lb"]
    after = (codex_home / ROLLOUT).read_bytes()
    # Only the provider's bytes changed; the file keeps its time (the CLI sorts sessions by it).
    assert after == before.replace(b'"model_provider":"openai"', b'"model_provider":"codex-lb"')
    assert (codex_home / ROLLOUT).stat().st_mtime == 1_700_000_000
    [backup] = codex_home.glob("codex-lb-retag-backup-*")
    assert f"backup of the changed files: {backup}" in out
    assert (backup / ROLLOUT).read_bytes() == before
    assert thread_providers(backup) == ["openai"]

    assert main(["codex-sessions", "retag", "--back", "--codex-home", str(codex_home)]) == 0
    assert "re-tagged 2 of 3 session files and 1 thread index rows from 'codex-lb' to 'openai'" in (
        capsys.readouterr().out
    )
    assert (codex_home / ROLLOUT).read_bytes() == before
    assert thread_providers(codex_home) == ["openai"]


def test_dry_run_counts_and_changes_nothing(codex_home, capsys):
    before = {p: (codex_home / p).read_bytes() for p in (ROLLOUT, OTHER, ARCHIVED)}
    assert main(["codex-sessions", "retag", "--dry-run", "--codex-home", str(codex_home)]) == 0
    assert "would re-tag 2 of 3 session files and 1 thread index rows" in capsys.readouterr().out
    assert {p: (codex_home / p).read_bytes() for p in before} == before
    assert thread_providers(codex_home) == ["openai"]
    assert not list(codex_home.glob("codex-lb-retag-backup-*"))


def test_a_custom_provider_id_and_codex_home_from_the_environment(codex_home, capsys, monkeypatch):
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    assert main(["codex-sessions", "retag", "--provider", "my-lb"]) == 0
    assert providers(codex_home)[ROLLOUT] == "my-lb"
    assert main(["codex-sessions", "retag"]) == 0  # nothing left tagged openai
    assert "re-tagged 0 of 3 session files and 0 thread index rows" in capsys.readouterr().out


def test_a_broken_session_file_is_reported_and_the_others_still_retagged(codex_home, capsys):
    (codex_home / OTHER).write_text('{"type":"session_meta","payload":{"model_provider":"openai"\n')
    assert main(["codex-sessions", "retag", "--codex-home", str(codex_home)]) == 0
    captured = capsys.readouterr()
    assert "re-tagged 2 of 3 session files" in captured.out
    assert f"skipped {codex_home / OTHER}" in captured.err


def test_a_missing_codex_home_is_one_line(tmp_path, capsys):
    assert main(["codex-sessions", "retag", "--codex-home", str(tmp_path / "nope")]) == 2
    assert "no Codex CLI home" in capsys.readouterr().err
