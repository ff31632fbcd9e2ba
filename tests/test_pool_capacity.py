"""The pool's size limit (CODEX_LB_MAX_ACCOUNTS, the shared slot table): a clear 409, not a bare 500."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import orjson
import pytest

from server.config import ConfigError
from server.demo.fake_upstream import mint_auth_json
from tests.conftest import make_settings
from tests.support.live_server import ROOT
from tests.support.proxy import proxy_settings, serve_proxy


@pytest.fixture
async def small_pool(tmp_path, database_url, fake_upstream):
    settings = proxy_settings(tmp_path, database_url, fake_upstream, max_accounts="2")
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def _import(url: str, *account_ids: str) -> tuple[int, dict]:
    form = aiohttp.FormData()
    for account_id in account_ids:
        form.add_field("auth_json", orjson.dumps(mint_auth_json(account_id)), filename=f"{account_id}.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/accounts/import", data=form) as response:
            return response.status, await response.json()


async def test_an_import_beyond_the_limit_is_a_409_naming_it(small_pool):
    await small_pool.add_accounts("acc_1", "acc_2")
    status, body = await _import(small_pool.url, "acc_3")
    assert status == 409
    error = body["error"]
    assert error["code"] == "pool_full" and error["limit"] == 2
    assert "at most 2 accounts" in error["message"] and "CODEX_LB_MAX_ACCOUNTS" in error["message"]
    assert [e["code"] for e in error["errors"]] == ["pool_full"]
    assert len(await small_pool.accounts()) == 2


async def test_a_full_pool_still_takes_new_tokens_for_its_accounts(small_pool):
    await small_pool.add_accounts("acc_1", "acc_2")
    status, body = await _import(small_pool.url, "acc_1", "acc_new")
    assert status == 207
    assert [a["chatgpt_account_id"] for a in body["imported"]] == ["acc_1"]
    assert [(e["source"], e["code"]) for e in body["errors"]] == [("acc_new.json", "pool_full")]


async def test_cli_import_into_a_full_pool_names_the_limit(small_pool, tmp_path):
    await small_pool.add_accounts("acc_1", "acc_2")
    path = tmp_path / "auth.json"
    path.write_bytes(orjson.dumps(mint_auth_json("acc_cli")))
    env = {
        "PATH": "/usr/bin:/bin",
        "CODEX_LB_DATA_DIR": str(small_pool.settings.data_dir),
        "CODEX_LB_DATABASE_URL": small_pool.settings.database_url,
        "CODEX_LB_MAX_ACCOUNTS": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "accounts", "import", str(path),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "not imported" in err.decode() and "at most 2 accounts" in err.decode()


def test_the_limit_is_a_validated_setting(tmp_path):
    assert make_settings(tmp_path).max_accounts == 512
    assert make_settings(tmp_path, max_accounts="2000").max_accounts == 2000
    with pytest.raises(ConfigError, match="CODEX_LB_MAX_ACCOUNTS"):
        make_settings(tmp_path, max_accounts="0")
