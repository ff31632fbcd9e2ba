"""Per-account routing policies through the public surface: the management API, the `codex-lb accounts
policy` command, the account history, and the requests they steer (the request log's routing column)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.test_accounts_cli import cli


async def api(proxy, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, proxy.url + path, json=body) as response:
            return response.status, await response.json()


async def test_a_policy_is_stored_shown_and_recorded(proxy):
    [added] = await proxy.add_accounts("acc_policy")
    assert (added["routing_policy"], added["reserve_percent"]) == ("normal", 0.0)
    path = f"/api/accounts/{added['id']}/policy"
    status, body = await api(proxy, "PUT", path, {"routing_policy": "preserve", "reserve_percent": 30})
    assert status == 200 and (body["routing_policy"], body["reserve_percent"]) == ("preserve", 30.0)
    status, body = await api(proxy, "PUT", path, {"routing_policy": "preserve"})
    assert body["reserve_percent"] == 20.0  # the default floor
    status, body = await api(proxy, "PUT", path, {"routing_policy": "burn_first"})
    assert (body["routing_policy"], body["reserve_percent"]) == ("burn_first", 0.0)
    [listed] = await proxy.accounts()
    assert listed["routing_policy"] == "burn_first"
    status, shown = await api(proxy, "GET", f"/api/accounts/{added['id']}")
    reasons = [e["reason"] for e in shown["events"] if e["kind"] == "audit"]
    assert reasons[:3] == [
        "routing policy: burn_first",
        "routing policy: preserve (keep 20 % in reserve)",
        "routing policy: preserve (keep 30 % in reserve)",
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "routing_policy"),
        ({"routing_policy": "greedy"}, "routing_policy"),
        ({"routing_policy": "preserve", "reserve_percent": 0}, "reserve_percent"),
        ({"routing_policy": "preserve", "reserve_percent": 101}, "reserve_percent"),
        ({"routing_policy": "preserve", "reserve_percent": "20"}, "reserve_percent"),
        ({"routing_policy": "preserve", "reserve_percent": True}, "reserve_percent"),
        ({"routing_policy": "normal", "reserve_percent": 20}, "reserve_percent"),
    ],
)
async def test_bad_policies_are_refused_with_the_field_named(proxy, body, param):
    [added] = await proxy.add_accounts("acc_bad_policy")
    status, answer = await api(proxy, "PUT", f"/api/accounts/{added['id']}/policy", body)
    assert status == 400, answer
    assert answer["error"]["param"] == param and answer["error"]["code"] == "invalid_routing_policy"
    assert (await proxy.accounts())[0]["routing_policy"] == "normal"


async def test_unknown_account_policy_is_404(proxy):
    status, body = await api(proxy, "PUT", "/api/accounts/77/policy", {"routing_policy": "normal"})
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_policy_from_the_command_line(proxy):
    [added] = await proxy.add_accounts("acc_cli_policy")
    number = str(added["id"])
    code, out, _ = await cli(proxy, "policy", number, "preserve", "--reserve", "35")
    assert code == 0 and "routing policy preserve (keep 35 % in reserve)" in out
    code, out, _ = await cli(proxy, "list")
    assert "(preserve 35%)" in out
    code, out, _ = await cli(proxy, "show", number)
    assert "routing policy   preserve 35%" in out
    code, _, err = await cli(proxy, "policy", number, "burn_first", "--reserve", "10")
    assert code == 2 and "--reserve" in err
    code, _, err = await cli(proxy, "policy", number, "preserve", "--reserve", "0")
    assert code == 2 and "--reserve" in err
    assert (await cli(proxy, "policy", number, "burn_first"))[0] == 0
    code, out, _ = await cli(proxy, "policy", "999", "normal")
    assert code == 1
