"""The history pages in a real Chromium on a month of generated demo history: the overview shows the
API's own figures; the request logs filter by key and status, open a row and export the CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path

import aiohttp
import pytest

from server.config import Settings
from server.db import Database
from server.usage import history
from tests.support.polling import eventually
from tests.test_dashboard_browser import (  # noqa: F401 (fixtures)
    auth_json_files,
    browser_ready,
    dashboard,
    import_accounts,
    run_scenario,
)

pytestmark = pytest.mark.slow
ROWS = 20_000


@pytest.fixture
def server_env():
    return {"CODEX_LB_USAGE_ROLLUP_INTERVAL_SECONDS": "1"}


async def _api(server, path: str, method: str = "GET", **kwargs):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, server.url + path, **kwargs) as response:
            assert response.status < 300, await response.text()
            return await response.json()


def _fill(data_dir: Path, key_ids: tuple[int, ...]) -> int:
    settings = Settings.load({"CODEX_LB_DATA_DIR": str(data_dir)}, cwd=data_dir)
    db = Database(settings)
    db.open()
    try:
        spec = history.HistorySpec(rows=ROWS, days=29, account_ids=(1, 2, 3), api_key_ids=key_ids)
        return history.fill(db.orm, spec, roll_up=False)  # the server's own job rolls it up
    finally:
        db.close()


async def test_history_pages_show_the_apis_figures_filter_open_and_export(dashboard, fake_upstream, tmp_path):  # noqa: F811
    plans = (("hist-plus", "plus", 3_000_000), ("hist-pro", "pro", 6_000_000), ("hist-team", "team", 500_000))
    await import_accounts(dashboard, await auth_json_files(fake_upstream, tmp_path, *plans))
    keys = []
    for name in ("ci-bots", "alice-laptop", "team-shared"):
        limits = [{"quantity": "requests", "window": "month", "max": 5000}]
        keys.append(await _api(dashboard, "/api/api-keys", "POST", json={"name": name, "limits": limits}))
    await asyncio.to_thread(_fill, tmp_path / "data", tuple(k["id"] for k in keys))
    await eventually(  # the rollup job catches up
        lambda: _api(dashboard, "/api/usage?bucket=day&since=0"),
        lambda usage: usage["totals"]["requests"] >= ROWS,
        timeout=60,
        interval=0.5,
    )

    result = await run_scenario("history", tmp_path, dashboard, key_name="ci-bots")

    now = time.time()
    for label, span, bucket in (("24h", 86400, "hour"), ("7d", 7 * 86400, "day"), ("30d", 30 * 86400, "day")):
        api = (await _api(dashboard, f"/api/usage?bucket={bucket}&since={now - span}&until={now}"))["totals"]
        shown = result["overview"][label]
        assert shown["requests"] == api["requests"], label
        assert shown["tokens"] == api["total_tokens"], label
        assert shown["cost"] == pytest.approx(api["cost_usd"]), label
        assert shown["error-rate"] == api["errors"], label
    assert result["overview"]["30d"]["requests"] == ROWS
    assert result["active_accounts"] == 3

    key_id = keys[0]["id"]
    assert f"api_key_id={key_id}" in result["logs_url"] and "status=error" in result["logs_url"]
    detail = await _api(dashboard, f"/api/request-logs/{result['detail_log_id']}")
    assert detail["api_key_id"] == key_id and (detail["status"] >= 400 or detail["error_code"])
    assert detail["request_id"] in result["detail_text"]
    table = list(csv.DictReader(io.StringIO(result["csv"])))
    expected = []
    cursor = ""
    while True:
        page = await _api(dashboard, f"/api/request-logs?api_key_id={key_id}&status=error&limit=1000{cursor}")
        expected += [row["request_id"] for row in page["request_logs"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert [row["request_id"] for row in table] == expected and len(expected) > 10
    assert all(row["api_key_id"] == str(key_id) for row in table)
    assert len(result["screenshots"]) == 6 * 4
