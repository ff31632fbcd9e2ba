"""The server as users start it: `sanic server.app --workers N`, the `codex-lb` command, two replicas."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from schema.migrations import discover, latest_version
from server.runtime import migrator
from tests.support.databases import fresh_postgres_schema
from tests.support.live_server import ROOT, ServerProcess, free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.slow


async def _worker_pids(url: str, want: int, timeout: float = 20.0) -> set[int]:
    """Ask /health/live over many fresh connections until `want` distinct workers have answered."""
    seen: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.get(url + "/health/live") as response:
                seen.add((await response.json())["worker"])

        async def batch() -> set[int]:
            await asyncio.gather(*(one() for _ in range(32)))
            return seen

        return await eventually(batch, lambda seen: len(seen) >= want, timeout=timeout, interval=0)


async def test_two_workers_both_answer(tmp_path, database_url):
    server = ServerProcess(
        {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_DATABASE_URL": database_url}, workers=2
    )
    server.start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        assert len(await _worker_pids(server.url, want=2)) == 2
    finally:
        assert server.stop() == 0, server.output()[-2000:]


async def test_two_replicas_share_one_postgresql(tmp_path):
    with fresh_postgres_schema() as url:
        replicas = [
            ServerProcess(
                {"CODEX_LB_DATA_DIR": str(tmp_path / f"r{i}"), "CODEX_LB_DATABASE_URL": url}, workers=2
            )
            for i in range(2)
        ]
        for i, replica in enumerate(replicas):
            replica.start(tmp_path / f"replica{i}.log")
        try:
            await asyncio.gather(*(replica.wait_ready() for replica in replicas))
            for replica in replicas:
                assert len(await _worker_pids(replica.url, want=2)) == 2
            conn = migrator.connect(url)
            try:
                cur = conn.cursor()
                cur.execute("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version")
                assert cur.fetchone() == (len(discover()), len(discover()))  # each step once
            finally:
                conn.close()
        finally:
            for replica in replicas:
                replica.stop()


async def test_codex_lb_command_starts_the_server(tmp_path):
    command = shutil.which("codex-lb", path=str(Path(sys.executable).parent))
    assert command, "pip install -e . should have installed the codex-lb console command"
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [command, "--port", str(port), "--workers", "1", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        stdout=(tmp_path / "out.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ServerProcess({}, port=port)
    server.proc, server.log_path = proc, tmp_path / "out.log"
    try:
        await server.wait_ready()
        assert (data_dir / "store.db").exists()
        assert (data_dir / "encryption.key").stat().st_mode & 0o777 == 0o600
        assert data_dir.stat().st_mode & 0o777 == 0o700
    finally:
        server.stop()


def test_database_newer_than_code_stops_the_server_with_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrator.migrate(url)
    conn = migrator.connect(url)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future', 0)", (latest_version() + 1,))
    conn.close()
    result = subprocess.run(
        [sys.executable, "-m", "sanic", "server.app", "--port", str(free_port()), "--workers", "2"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CODEX_LB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "codex-lb: cannot start: the database schema is at version" in result.stderr


async def test_json_log_format_covers_sanic_own_lines(tmp_path):
    """With CODEX_LB_LOG_FORMAT=json every line the server prints, Sanic's start-up and shutdown
    lines included, is one JSON object a log shipper can read without a second parser."""
    server = ServerProcess({"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_LOG_FORMAT": "json"}, workers=2)
    server.start(tmp_path / "server.log")
    try:
        await server.wait_ready()
    finally:
        assert server.stop() == 0, server.output()[-2000:]
    lines = [line for line in server.output().splitlines() if line.strip()]
    loggers = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        loggers.add(record["logger"])
    assert any(name.startswith("sanic.") for name in loggers), loggers
