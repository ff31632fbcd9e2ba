"""Routing policies and settings in a real browser: set burn first and preserve from the Accounts page,
the earlier-reset preference from Settings, and read a request's routing reason in the request log."""

from __future__ import annotations

import aiohttp
import pytest

from tests.test_dashboard_browser import (  # noqa: F401 (fixtures)
    auth_json_files,
    browser_ready,
    dashboard,
    import_accounts,
    run_scenario,
    server_env,
)

pytestmark = pytest.mark.slow


async def test_policies_set_in_the_browser_steer_requests_and_show_why(
    dashboard,  # noqa: F811 (the imported fixture)
    fake_upstream,
    tmp_path,
):
    files = await auth_json_files(
        fake_upstream,
        tmp_path,
        ("acct-fresh", "pro", 0),
        ("acct-burn", "plus", 4_000_000),
        ("acct-keep", "team", 0),
    )
    await import_accounts(dashboard, files)
    async with aiohttp.ClientSession() as session, session.get(dashboard.url + "/api/accounts") as response:
        ids = {a["chatgpt_account_id"]: a["id"] for a in (await response.json())["accounts"]}
    result = await run_scenario(
        "routing", tmp_path, dashboard, burn_account=ids["acct-burn"], preserve_account=ids["acct-keep"]
    )
    assert (result["burn_badge"], result["preserve_badge"]) == ("Burn first", "Preserve 30 %")
    assert result["proxy_status"] == 200
    assert result["routing_text"].startswith("burn_first")
    async with aiohttp.ClientSession() as session:
        async with session.get(dashboard.url + "/api/accounts") as response:
            stored = {a["id"]: a for a in (await response.json())["accounts"]}
        async with session.get(dashboard.url + "/api/settings") as response:
            assert (await response.json())["prefer_earlier_reset"] == "5h"
    assert stored[ids["acct-burn"]]["routing_policy"] == "burn_first"
    keep = stored[ids["acct-keep"]]
    assert (keep["routing_policy"], keep["reserve_percent"]) == ("preserve", 30.0)
    assert (await fake_upstream.account_stats("acct-burn"))["requests"] == 1
    assert len(result["screenshots"]) == 16  # 4 views x light/dark x desktop/phone
