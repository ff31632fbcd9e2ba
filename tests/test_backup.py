"""`codex-lb backup` / `restore`: an online copy of a running server's SQLite database and its key,
restored into another data dir where the tokens still open; restore refuses a running server's files
and existing files without --force."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile

import pytest

from server.cli import main
from server.runtime.secretbox import load_or_create_key
from tests.conftest import make_settings


def use_data_dir(monkeypatch, data_dir, port: int = 1) -> None:
    monkeypatch.setenv("CODEX_LB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CODEX_LB_PORT", str(port))
    monkeypatch.delenv("CODEX_LB_DATABASE_URL", raising=False)


async def listed_accounts(capsys, data_dir) -> list[str]:
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["accounts", "list", "--json", "--data-dir", str(data_dir)]) == 0
    return [a["chatgpt_account_id"] for a in json.loads(capsys.readouterr().out)["accounts"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_backup_of_a_running_server_restores_elsewhere_with_working_tokens(
    proxy, tmp_path, monkeypatch, capsys
):
    await proxy.add_accounts("acc_backup")
    await proxy.post("/backend-api/codex/responses", {"model": "gpt-5.4", "input": "hi", "stream": True})
    archive = tmp_path / "backup.tar.gz"
    use_data_dir(monkeypatch, proxy.settings.data_dir, int(proxy.url.rsplit(":", 1)[1]))
    monkeypatch.setenv("CODEX_LB_DATABASE_URL", proxy.settings.database_url)  # the test's is elsewhere
    # In a thread: the server runs on this test's event loop and must keep answering.
    assert await asyncio.to_thread(main, ["backup", "-o", str(archive)]) == 0
    captured = capsys.readouterr()
    assert f"backed up store.db, encryption.key to {archive}" in captured.out
    assert "whoever has the file can open every account's OAuth tokens" in captured.err
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as contents:
        assert sorted(contents.getnames()) == ["codex-lb-backup.json", "encryption.key", "store.db"]

    # Restoring over the running server's own files is refused, --force or not.
    assert await asyncio.to_thread(main, ["restore", str(archive), "--force"]) == 1
    assert "answers on port" in capsys.readouterr().err

    elsewhere = tmp_path / "restored"
    use_data_dir(monkeypatch, elsewhere)
    assert main(["restore", str(archive)]) == 0
    assert f"restored encryption.key, store.db into {elsewhere}" in capsys.readouterr().out
    assert stat.S_IMODE((elsewhere / "encryption.key").stat().st_mode) == 0o600
    assert await listed_accounts(capsys, elsewhere) == ["acc_backup"]

    # Again over those files: only with --force, and the replaced ones are kept beside.
    assert main(["restore", str(archive)]) == 1
    assert "add --force" in capsys.readouterr().err
    assert main(["restore", str(archive), "--force"]) == 0
    assert (
        len([p for p in elsewhere.glob("store.db.before-restore-*") if p.name[-4:] not in ("-wal", "-shm")])
        == 1
    )
    assert len(list(elsewhere.glob("encryption.key.before-restore-*"))) == 1


def test_restore_refuses_what_is_not_a_backup(tmp_path, monkeypatch, capsys):
    use_data_dir(monkeypatch, tmp_path / "data")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    assert main(["restore", str(junk)]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_with_postgresql_the_backup_holds_the_key_and_points_to_pg_dump(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path / "data", "postgresql://codex@db.example/codexlb")
    settings.data_dir.mkdir(parents=True)
    settings.encryption_key_file.write_bytes(b"k" * 32)
    use_data_dir(monkeypatch, settings.data_dir)
    monkeypatch.setenv("CODEX_LB_DATABASE_URL", settings.database_url)
    archive = tmp_path / "pg.tar.gz"
    assert main(["backup", "-o", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "backed up encryption.key" in out and "pg_dump" in out


def test_restore_refuses_a_database_another_process_has_open(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "store.db"
    sqlite3.connect(database).close()
    use_data_dir(monkeypatch, tmp_path / "empty")
    archive = tmp_path / "b.tar.gz"
    assert main(["backup", "-o", str(archive)]) == 0
    use_data_dir(monkeypatch, data_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sqlite3, sys, time; c = sqlite3.connect({str(database)!r}); "
         "c.execute('select 1'); print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == b"open"
        assert main(["restore", str(archive), "--force"]) == 1
        assert f"is open in process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_a_backup_and_what_it_restores_are_owner_only(tmp_path, monkeypatch):
    previous_umask = os.umask(0o022)  # the common default: staged copies and new files come out 0644
    try:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        sqlite3.connect(data_dir / "store.db").close()
        load_or_create_key(data_dir / "encryption.key")
        use_data_dir(monkeypatch, data_dir)
        archive = tmp_path / "b.tar.gz"
        archive.write_bytes(b"an older file, readable by all")
        archive.chmod(0o644)
        assert main(["backup", "-o", str(archive)]) == 0
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        with tarfile.open(archive) as contents:
            assert {m.name: oct(m.mode) for m in contents} == {
                name: "0o600" for name in ("codex-lb-backup.json", "store.db", "encryption.key")
            }

        elsewhere = tmp_path / "restored"
        elsewhere.mkdir(mode=0o755)  # already there, as a fresh volume or an operator's mkdir leaves it
        use_data_dir(monkeypatch, elsewhere)
        assert main(["restore", str(archive)]) == 0
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700
        for name in ("store.db", "encryption.key"):
            assert stat.S_IMODE((elsewhere / name).stat().st_mode) == 0o600, name
    finally:
        os.umask(previous_umask)
