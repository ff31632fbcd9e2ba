"""The one-line start from a built wheel (docs/operations.md, Running it): `scripts/wheel` builds codex-lb
with the dashboard inside, and the installed wheel alone (no clone on the path) starts a server that serves
it. `uvx`/`pipx run` install the same wheel with its dependencies; here the test's venv provides those."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

from tests.support.live_server import free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel() -> Path:
    if not shutil.which("npm"):
        pytest.skip("npm is needed to build the dashboard into the wheel")
    built = subprocess.run([str(ROOT / "scripts" / "wheel")], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    return ROOT / built.stdout.strip().splitlines()[-1]


def test_the_wheel_carries_the_dashboard_and_the_console_command(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "server/static/index.html" in names
    assert any(n.startswith("server/static/assets/") and n.endswith(".js") for n in names)
    assert any(n.startswith("schema/migrations/") for n in names)
    # The demo's fake backend ships with it; the tests stay out of the wheel.
    assert "server/demo/fake_upstream/__main__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    assert "codex-lb = server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


async def test_the_installed_wheel_starts_a_server_with_the_dashboard(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, timeout=300)  # fmt: skip
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site), "CODEX_LB_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    probe = [sys.executable, "-c", "import server; print(server.__file__)"]
    where = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(site / "server" / "__init__.py")  # the wheel's files, not this clone
    fake = [sys.executable, "-m", "server.demo.fake_upstream", "--help"]  # what `codex-lb demo` starts
    assert subprocess.run(fake, cwd=tmp_path, env=env, capture_output=True, timeout=60).returncode == 0
    output = subprocess.PIPE
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as session:

            async def readiness() -> int | None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/health/ready") as ready:
                        return ready.status
                except aiohttp.ClientError:
                    assert server.poll() is None, server.stdout.read().decode()[-3000:]
                    return None

            await eventually(readiness, lambda status: status == 200, timeout=30, interval=0.1)
            async with session.get(f"http://127.0.0.1:{port}/") as page:
                assert page.status == 200
                assert '<div id="app">' in await page.text() or "<html" in (await page.text()).lower()
            async with session.get(f"http://127.0.0.1:{port}/health/live") as live:
                assert live.status == 200
    finally:
        server.terminate()
        server.wait(30)
