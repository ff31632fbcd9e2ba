"""/api/api-keys and `codex-lb keys`: the secret is shown once, only its digest is stored, edits apply."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys

import orjson

from server.runtime import migrator
from tests.support.keys import api, bearer, create_key, set_key_auth
from tests.support.live_server import ROOT, serve_in_process
from tests.support.polling import eventually
from tests.support.proxy import codex_body

CODEX = "/backend-api/codex/responses"


def _stored_key_rows(database_url: str) -> list[tuple]:
    conn = migrator.connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT key_prefix, key_hash FROM api_key")
        return cur.fetchall()
    finally:
        conn.close()


async def test_create_shows_the_key_once_and_stores_only_its_digest(proxy):
    created = await create_key(
        proxy.url,
        name="ci bot",
        expires_at="2099-01-01T00:00:00Z",
        allowed_models=["gpt-5.4"],
        limits=[{"quantity": "tokens", "window": "day", "max": 100000}],
    )
    assert re.fullmatch(r"sk-clb-[A-Za-z0-9_-]{43}", created["key"])
    assert created["key_prefix"] == created["key"][:12]
    assert created["expires_at"] == 4070908800.0
    assert created["limits"][0] | {"id": 0} == {
        "id": 0,
        "quantity": "tokens",
        "window": "day",
        "window_kind": "calendar",
        "max": 100000.0,
        "model": None,
        "used": 0.0,
        "reserved": 0.0,
        "remaining": 100000.0,
        "window_start": created["limits"][0]["window_start"],
        "resets_at": created["limits"][0]["resets_at"],
    }
    status, listed = await api(proxy.url, "GET", "/api/api-keys")
    assert status == 200
    assert [k["name"] for k in listed["api_keys"]] == ["ci bot"]
    assert "key" not in listed["api_keys"][0] and created["key"] not in str(listed)
    rows = _stored_key_rows(proxy.settings.database_url)
    assert rows == [(created["key_prefix"], hashlib.sha256(created["key"].encode()).hexdigest())]


async def test_bad_specs_get_a_400_naming_the_field(proxy):
    bad = [
        ({}, "name"),
        ({"name": "x", "limits": [{"quantity": "tokens", "window": "fortnight", "max": 1}]}, "window"),
        ({"name": "x", "limits": [{"quantity": "bytes", "window": "day", "max": 1}]}, "quantity"),
        ({"name": "x", "limits": [{"quantity": "tokens", "window": "day", "max": 0}]}, "max"),
        ({"name": "x", "limits": [{"quantity": "requests", "window": "day", "max": 1.5}]}, "max"),
        ({"name": "x", "allowed_reasoning_efforts": ["turbo"]}, "allowed_reasoning_efforts"),
        ({"name": "x", "allowed_account_ids": [999]}, "allowed_account_ids"),
        ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x", "colour": "red"}, "colour"),
    ]
    for spec, field in bad:
        status, body = await api(proxy.url, "POST", "/api/api-keys", spec)
        assert status == 400, spec
        assert field in body["error"]["message"], (spec, body)
    status, listed = await api(proxy.url, "GET", "/api/api-keys")
    assert listed["api_keys"] == []


async def test_edit_disable_regenerate_delete(proxy):
    await proxy.add_accounts("acc_1")
    await set_key_auth(proxy.url, True)
    key = await create_key(proxy.url, limits=[{"quantity": "requests", "window": "day", "max": 10}])
    assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 200
    await eventually(  # the request is settled in the background, after its answer
        lambda: api(proxy.url, "GET", "/api/api-keys"),
        lambda answer: answer[1]["api_keys"][0]["limits"][0]["used"] == 1,
    )
    # Editing the max of a rule keeps its counter; other fields change in place.
    status, edited = await api(
        proxy.url,
        "PATCH",
        f"/api/api-keys/{key['id']}",
        {"name": "renamed", "limits": [{"quantity": "requests", "window": "day", "max": 20}]},
    )
    assert status == 200 and edited["name"] == "renamed"
    assert edited["limits"][0]["max"] == 20 and edited["limits"][0]["id"] == key["limits"][0]["id"]
    assert edited["limits"][0]["used"] == 1
    status, _ = await api(proxy.url, "PATCH", f"/api/api-keys/{key['id']}", {"enabled": False})
    disabled = await proxy.post(CODEX, codex_body(), bearer(key))
    assert disabled.status == 401 and "disabled" in disabled.json()["error"]["message"]
    await api(proxy.url, "PATCH", f"/api/api-keys/{key['id']}", {"enabled": True})
    status, fresh = await api(proxy.url, "POST", f"/api/api-keys/{key['id']}/regenerate")
    assert status == 200 and fresh["key"] != key["key"] and fresh["id"] == key["id"]
    assert (await proxy.post(CODEX, codex_body(), bearer(key))).status == 401
    assert (await proxy.post(CODEX, codex_body(), bearer(fresh))).status == 200
    assert (await api(proxy.url, "DELETE", f"/api/api-keys/{key['id']}"))[0] == 204
    assert (await proxy.post(CODEX, codex_body(), bearer(fresh))).status == 401
    assert (await api(proxy.url, "DELETE", f"/api/api-keys/{key['id']}"))[0] == 404


async def test_a_change_reaches_another_server_within_seconds(proxy):
    await proxy.add_accounts("acc_1")
    await set_key_auth(proxy.url, True)
    key = await create_key(proxy.url)
    async with serve_in_process(proxy.settings) as other:
        other_url = other.url
        assert (await _post(other_url, bearer(key))) == 200
        await api(proxy.url, "PATCH", f"/api/api-keys/{key['id']}", {"enabled": False})
        status = await eventually(
            lambda: _post(other_url, bearer(key)), lambda status: status != 200, interval=0.1
        )
        assert status == 401


async def _post(url: str, headers: dict) -> int:
    import aiohttp
    import orjson

    async with aiohttp.ClientSession() as session:
        async with session.post(url + CODEX, data=orjson.dumps(codex_body()), headers=headers) as response:
            await response.read()
            return response.status


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CODEX_LB_DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "keys", *args, "--data-dir", str(settings.data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_create_list_revoke(proxy):
    await proxy.add_accounts("acc_1")
    created = await asyncio.to_thread(
        _cli, proxy.settings, "create", "nightly", "--limit", "tokens/day=50000", "--model", "gpt-5.4"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"sk-clb-[A-Za-z0-9_-]{43}", key)
    listed = await asyncio.to_thread(_cli, proxy.settings, "list")
    assert listed.returncode == 0 and "nightly" in listed.stdout and key[:12] in listed.stdout
    assert key not in listed.stdout and "50000 tokens per day" in listed.stdout
    as_json = await asyncio.to_thread(_cli, proxy.settings, "list", "--json")
    [shown] = orjson.loads(as_json.stdout)["api_keys"]
    assert shown["name"] == "nightly" and shown["key_prefix"] == key[:12] and key not in as_json.stdout
    await set_key_auth(proxy.url, True)
    await eventually(lambda: _post(proxy.url, bearer(key)), lambda status: status == 200, interval=0.1)
    key_id = listed.stdout.split()[0]
    revoked = await asyncio.to_thread(_cli, proxy.settings, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    await eventually(lambda: _post(proxy.url, bearer(key)), lambda status: status == 401, interval=0.1)
    bad = await asyncio.to_thread(_cli, proxy.settings, "create", "x", "--limit", "tokens/fortnight=5")
    assert bad.returncode == 2 and "window" in bad.stderr
