"""The built dashboard in a real headless Chromium (Debian's, driven by playwright-core from
dashboard/node_modules) against `sanic server.app` and the fake upstream. Screenshots of every page in
both themes and at phone width land in test-artefacts/dashboard/ (git-ignored)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest

from tests.support.live_server import ROOT, ServerProcess, free_port

DASHBOARD = ROOT / "dashboard"
ARTEFACTS = ROOT / "test-artefacts" / "dashboard"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCENARIO_TIMEOUT_S = 120

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if not (ROOT / "server" / "static" / "index.html").is_file():
        return "the dashboard is not built (scripts/build-dashboard)"
    if not (DASHBOARD / "node_modules" / "playwright-core").is_dir():
        return "dashboard/node_modules has no playwright-core (scripts/build-dashboard installs it)"
    if not Path(CHROMIUM).exists():
        return "no chromium (apt-get install chromium; scripts/test does it as root)"
    return None


@pytest.fixture
def browser_ready():
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture
async def dashboard(tmp_path: Path, fake_upstream, browser_ready):
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path / "data"),
        "CODEX_LB_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake_upstream.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
        "CODEX_LB_USAGE_POLL_INTERVAL_SECONDS": "2",  # the usage bars fill in while the test runs
    }
    server = ServerProcess(env).start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        yield server
    finally:
        await asyncio.get_running_loop().run_in_executor(None, server.stop)


async def run_scenario(name: str, tmp_path: Path, server: ServerProcess, **extra) -> dict:
    """Run dashboard/e2e/<name>.mjs; answers the JSON it prints."""
    config = {
        "base_url": server.url,
        "artefacts_dir": str(ARTEFACTS),
        "chromium": CHROMIUM,
        "profile_dir": str(tmp_path / f"chromium-{name}"),
        **extra,
    }
    process = await asyncio.create_subprocess_exec(
        "node",
        str(DASHBOARD / "e2e" / f"{name}.mjs"),
        cwd=DASHBOARD,
        env={**os.environ, "E2E_CONFIG": orjson.dumps(config).decode()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SCENARIO_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    log = server.output()[-2000:]
    assert process.returncode == 0, f"{name} failed:\n{err.decode()[-4000:]}\nserver:\n{log}"
    return orjson.loads(out.decode().strip().splitlines()[-1])


def auth_json_files(fake, tmp_path: Path, *specs: tuple[str, str, int]) -> list[str]:
    """auth.json files of new fake accounts, each with `used` tokens of its 10 M short-window budget spent."""
    paths = []
    for account_id, plan, used in specs:
        path = tmp_path / f"{account_id}.json"
        path.write_bytes(orjson.dumps(fake.create_account(account_id, plan_type=plan)))
        if used:
            fake.consume(account_id, used)
        paths.append(str(path))
    return paths


async def test_accounts_import_by_drop_pause_resume_and_detail(dashboard, fake_upstream, tmp_path):
    files = auth_json_files(
        fake_upstream,
        tmp_path,
        ("acct-plus", "plus", 4_200_000),
        ("acct-pro", "pro", 8_600_000),
        ("acct-team", "team", 9_700_000),
    )
    result = await run_scenario("accounts", tmp_path, dashboard, auth_json_files=files)
    assert result["paused"] == 1
    assert len(result["device_code"]) >= 6
    assert len(result["screenshots"]) == 22  # 5 views x light/dark x desktop/phone, and 1 x 2
