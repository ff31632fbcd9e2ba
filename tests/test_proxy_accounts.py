"""Getting accounts into the pool: auth.json import through the API and the CLI, and listing them."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import orjson

from server.demo.fake_upstream import mint_auth_json
from tests.support.live_server import ROOT
from tests.support.polling import eventually

# Account choice per request: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]


async def test_import_several_auth_json_files_and_list_the_pool(proxy):
    imported = await proxy.add_accounts("acc_a", "acc_b", plan_type="pro")
    assert {a["chatgpt_account_id"] for a in imported} == {"acc_a", "acc_b"}
    assert all(a["created"] and a["plan_type"] == "pro" and a["status"] == "active" for a in imported)
    pool = await proxy.accounts()
    assert [a["chatgpt_account_id"] for a in pool] == ["acc_a", "acc_b"]
    assert {a["slot"] for a in pool} == {0, 1}
    assert all(a["live"]["in_flight"] == 0 for a in pool)


async def test_reimporting_the_same_account_updates_it_instead_of_adding(proxy):
    await proxy.add_accounts("acc_dup")
    again = await proxy.add_accounts("acc_dup")
    assert again[0]["created"] is False
    assert len(await proxy.accounts()) == 1


async def test_api_never_shows_tokens(proxy):
    auth = await proxy.fake.create_account("acc_secret")
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(auth), filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            imported = await response.read()
        async with session.get(proxy.url + "/api/accounts") as response:
            listed = await response.read()
    for token in auth["tokens"].values():
        if token != "acc_secret":
            assert token.encode() not in imported and token.encode() not in listed


async def test_bad_files_get_a_clear_error_and_good_ones_still_land(proxy):
    form = aiohttp.FormData()
    form.add_field("auth_json", b"{not json", filename="broken.json")
    form.add_field("auth_json", b'{"OPENAI_API_KEY": "sk-x"}', filename="apikey.json")
    form.add_field("auth_json", orjson.dumps(mint_auth_json("acc_good")), filename="good.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            assert response.status == 207
            body = await response.json()
    assert [e["source"] for e in body["errors"]] == ["broken.json", "apikey.json"]
    assert "not valid JSON" in body["errors"][0]["error"]
    assert "tokens" in body["errors"][1]["error"]
    assert [a["chatgpt_account_id"] for a in body["imported"]] == ["acc_good"]


async def test_import_without_files_is_a_400(proxy):
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="other.txt")  # multipart, but not the auth_json field
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"].startswith("Upload one or more")


async def test_cli_import_reaches_a_running_server(proxy, tmp_path):
    path = tmp_path / "auth.json"
    path.write_bytes(orjson.dumps(mint_auth_json("acc_cli", email="cli@example.com")))
    env = {
        "PATH": "/usr/bin:/bin",
        "CODEX_LB_DATA_DIR": str(proxy.settings.data_dir),
        "CODEX_LB_DATABASE_URL": proxy.settings.database_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "accounts", "import", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "added account" in result.stdout and "cli@example.com" in result.stdout
    # The running server picks the change up through the database change marker.
    await eventually(
        lambda: [a.chatgpt_account_id for a in proxy.server.app.ctx.proxy.roster.accounts],
        lambda ids: "acc_cli" in ids,
        timeout=10,
        interval=0.1,
        what="the server reloads its roster after the CLI import",
    )
