"""The built dashboard in a real headless Chromium (Debian's, driven by playwright-core from
dashboard/node_modules) against `sanic server.app` and the fake upstream. Screenshots of every page in
both themes and at phone width land in test-artefacts/dashboard/ (git-ignored)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI

from tests.support.live_server import ROOT, ServerProcess, free_port

DASHBOARD = ROOT / "dashboard"
ARTEFACTS = ROOT / "test-artefacts" / "dashboard"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCENARIO_TIMEOUT_S = 120
BOOTSTRAP_TOKEN = "bootstrap-token-for-the-browser-test"

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
def server_env() -> dict:
    """Extra CODEX_LB_* variables for the server of one test (a test overrides this fixture)."""
    return {}


@pytest.fixture
async def dashboard(tmp_path: Path, fake_upstream, browser_ready, server_env):
    env = {
        "CODEX_LB_DATA_DIR": str(tmp_path / "data"),
        "CODEX_LB_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "CODEX_LB_AUTH_BASE_URL": fake_upstream.auth_url,
        "CODEX_LB_OAUTH_CALLBACK_HOST": "127.0.0.1",
        "CODEX_LB_OAUTH_CALLBACK_PORT": str(free_port()),
        "CODEX_LB_USAGE_POLL_INTERVAL_SECONDS": "2",  # the usage bars fill in while the test runs
        **server_env,
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


async def auth_json_files(fake, tmp_path: Path, *specs: tuple[str, str, int]) -> list[str]:
    """auth.json files of new fake accounts, each with `used` tokens of its 10 M short-window budget spent."""
    paths = []
    for account_id, plan, used in specs:
        path = tmp_path / f"{account_id}.json"
        path.write_bytes(orjson.dumps(await fake.create_account(account_id, plan_type=plan)))
        if used:
            await fake.consume(account_id, used)
        paths.append(str(path))
    return paths


async def test_accounts_import_by_drop_pause_resume_and_detail(dashboard, fake_upstream, tmp_path):
    files = await auth_json_files(
        fake_upstream,
        tmp_path,
        ("acct-plus", "plus", 4_200_000),
        ("acct-pro", "pro", 8_600_000),
        ("acct-team", "team", 9_700_000),
    )
    result = await run_scenario(
        "accounts", tmp_path, dashboard, auth_json_files=files, fake_url=fake_upstream.url
    )
    assert result["paused"] == 1
    assert result["filtered_after_refresh"] == 1  # the filter held through two background refreshes
    assert len(result["device_code"]) >= 6
    assert result["accounts_after_device"] == 4  # the device-code sign-in completed while polled
    assert result["callback_url"].startswith("http://localhost:1455/auth/callback?code=")
    assert result["accounts_after_callback"] == 5  # ... and so did the pasted callback address
    assert result["accounts_after_delete"] == 4  # deleted after typing its name
    assert result["forced_theme"] is True  # the theme button overrides the (light) system theme
    assert len(result["screenshots"]) == 30  # 5 views x light/dark x desktop/phone, and 5 x 2


async def import_accounts(server: ServerProcess, files: list[str]) -> None:
    form = aiohttp.FormData()
    for path in files:
        with open(path, "rb") as file:  # noqa: ASYNC230 (a few hundred bytes)
            form.add_field("auth_json", file.read(), filename=Path(path).name)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/accounts/import", data=form) as response:
            assert response.status == 200, await response.text()


async def test_create_a_key_with_a_limit_copy_its_snippet_require_keys_and_use_it(
    dashboard, fake_upstream, tmp_path
):
    await import_accounts(
        dashboard, await auth_json_files(fake_upstream, tmp_path, ("acct-1", "plus", 1_000_000))
    )
    result = await run_scenario("keys", tmp_path, dashboard)

    key = result["key"]
    assert key.startswith("sk-clb-")
    # The copied snippets carry the key (or its variable) and this server's own address.
    assert f'base_url = "{dashboard.url}/backend-api/codex"' in result["codex_snippet"]
    assert 'env_key = "CODEX_LB_API_KEY"' in result["codex_snippet"] and key in result["codex_snippet"]
    assert f"curl {dashboard.url}/v1/responses" in result["curl_snippet"] and key in result["curl_snippet"]
    # The key works through the proxy; with the setting on, a request without one is refused.
    assert result["proxy_status"] == 200 and result["proxy_text"]
    assert result["keyless_status"] == 401
    client = AsyncOpenAI(base_url=dashboard.url + "/v1", api_key=key)
    answer = await client.responses.create(model="gpt-5.4", input="Say hi")
    assert answer.output_text
    async with aiohttp.ClientSession() as session, session.get(dashboard.url + "/api/api-keys") as response:
        (listed,) = (await response.json())["api_keys"]
    assert listed["limits"][0]["max"] == 100 and listed["limits"][0]["quantity"] == "requests"
    assert listed["usage"]["request_count"] >= 1
    # The strategy and the price changed in the browser route and price the proxied requests.
    assert result["saved_price_model"] == "gpt-5.4" and result["saved_cached_price"] == "1000"
    async with aiohttp.ClientSession() as session:
        async with session.get(dashboard.url + "/api/settings") as response:
            assert (await response.json())["routing_strategy"] == "round_robin"
        async with session.get(dashboard.url + "/api/request-logs") as response:
            logs = (await response.json())["request_logs"]
    assert logs
    for row in logs:  # at the overridden $2000 per 1M output tokens, not the built-in $15
        assert row["cost_usd"] >= row["output_tokens"] * 2000 / 1e6 > 0
    assert len(result["screenshots"]) == 20


async def test_sign_in_with_password_and_totp_then_sign_out(dashboard, tmp_path):
    result = await run_scenario("signin", tmp_path, dashboard)
    assert result["recovery_codes"] == 10
    assert "password" in result["wrong_password"].lower() or "code" in result["wrong_password"].lower()
    assert result["signed_in"] is True
    assert result["viewer_tabs"] == ["general", "security"]  # no sessions, no audit log
    assert result["viewer_refused"] == []
    assert result["after_sign_out"] == 401
    assert len(result["screenshots"]) == 24


class TestBeforeSignIn:
    """A remote first visit (the test server trusts X-Forwarded-For from loopback, as behind a proxy)."""

    @pytest.fixture
    def server_env(self):
        return {
            "CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
            "CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS": "true",
            "CODEX_LB_DASHBOARD_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN,
        }

    async def test_a_remote_first_visit_sets_the_password_with_the_bootstrap_token(self, dashboard, tmp_path):
        result = await run_scenario(
            "access",
            tmp_path,
            dashboard,
            headers={"X-Forwarded-For": "203.0.113.9"},
            expect="bootstrap",
            bootstrap_token=BOOTSTRAP_TOKEN,
        )
        assert result["bootstrapped"] is True


class TestTrustedHeaderMode:
    @pytest.fixture
    def server_env(self):
        return {
            "CODEX_LB_DASHBOARD_AUTH_MODE": "trusted_header",
            "CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
            "CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS": "true",
        }

    async def test_without_the_proxy_the_dashboard_fails_closed(self, dashboard, tmp_path):
        result = await run_scenario(
            "access", tmp_path, dashboard, headers={"X-Forwarded-For": "203.0.113.9"}, expect="proxy"
        )
        assert result["fail_closed"] is True
