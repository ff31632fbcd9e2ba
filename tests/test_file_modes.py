"""Secrets stay owner-only on disk: the data dir 0700, the key file and the SQLite database with its -wal
and -shm 0600, whether the server creates them or finds them looser from an older start."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from server.config import prepare_data_dir
from server.file_modes import make_owner_only
from server.runtime import migrator
from server.runtime.secretbox import load_or_create_key
from server.settings.database_url import sqlite_path
from tests.support.settings import make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """022, the common default, under which SQLite and mkdir would leave files readable by others."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_running_server_keeps_its_database_and_data_dir_owner_only(proxy):
    await proxy.add_accounts("acc_modes")
    await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "hi"})
    database = sqlite_path(proxy.settings.database_url)
    files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    assert mode(proxy.settings.data_dir) == 0o700
    assert mode(proxy.settings.encryption_key_file) == 0o600


def test_an_existing_data_dir_key_and_database_are_tightened(tmp_path):
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(mode=0o755)
    key = load_or_create_key(settings.encryption_key_file)
    settings.encryption_key_file.chmod(0o644)
    database = sqlite_path(settings.database_url)
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")  # leaves a -wal and a -shm while the connection is open
    try:
        companions = [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]
        assert [mode(f) for f in companions] == [0o644] * 3

        prepare_data_dir(settings)
        assert load_or_create_key(settings.encryption_key_file) == key
        migrator.migrate(settings.database_url)

        assert mode(settings.data_dir) == 0o700
        assert mode(settings.encryption_key_file) == 0o600
        assert [mode(f) for f in companions] == [0o600] * 3
    finally:
        conn.close()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="Linux /proc")
def test_a_path_that_cannot_be_tightened_is_a_warning_not_a_failure(caplog):
    # procfs refuses every chmod, even root's: like a read-only secret mount or another owner's dir.
    make_owner_only(Path("/proc/self"))
    [warning] = [r.getMessage() for r in caplog.records if r.name == "server.file_modes"]
    assert warning.startswith("other users can read path=/proc/self mode=0o555: cannot make it owner-only")
