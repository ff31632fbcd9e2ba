"""The egress proxies page in a real headless Chromium: add, test, pool and bind, against real local
proxies (tests/support/egress_proxies.py) and the fake upstream. Screenshots in test-artefacts/dashboard/."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.egress_proxies import HttpConnectProxy
from tests.support.live_server import free_port
from tests.test_dashboard_browser import (  # noqa: F401 (fixtures)
    auth_json_files,
    browser_ready,
    dashboard,
    import_accounts,
    run_scenario,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def server_env(fake_upstream):
    return {"CODEX_LB_EGRESS_PROBE_URL": fake_upstream.url + "/ip"}


async def test_add_test_and_bind_proxies_and_see_a_dead_one_fail_closed(
    dashboard, fake_upstream, tmp_path  # noqa: F811 (the imported fixture)
):
    http = HttpConnectProxy("127.0.0.2", "alice", "pw-e2e")
    await http.start()
    try:
        await import_accounts(
            dashboard,
            await auth_json_files(fake_upstream, tmp_path, ("acct-a", "plus", 0), ("acct-b", "pro", 0)),
        )
        async with aiohttp.ClientSession() as session, session.get(dashboard.url + "/api/accounts") as answer:
            ids = sorted(a["id"] for a in (await answer.json())["accounts"])
        result = await run_scenario(
            "proxies",
            tmp_path,
            dashboard,
            http_proxy_url=f"http://alice:pw-e2e@127.0.0.1:{http.port}",
            dead_proxy_url=f"socks5://127.0.0.1:{free_port()}",
            account_ids=ids,
        )
    finally:
        await http.stop()
    assert "127.0.0.2" in result["test_ok"] and "ms" in result["test_ok"]
    assert "nl-1 failed" in result["test_failed"]
    assert result["exit_cell"] == "127.0.0.2"
    assert "nl" in result["unavailable_reason"] and "down" in result["unavailable_reason"]
    assert len(result["screenshots"]) == 2 + 4
