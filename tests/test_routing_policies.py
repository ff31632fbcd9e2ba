"""Per-account routing policies through the public surface: the management API, the `codex-lb accounts
policy` command, the account history, and the requests they steer (the request log's routing column)."""

from __future__ import annotations

import time

import aiohttp
import pytest

from server.balancer.slots import Field
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


async def test_policies_steer_requests_and_say_so_in_the_request_log(proxy):
    accounts = await proxy.add_accounts("acc_r1", "acc_r2", "acc_r3")
    ids = {a["chatgpt_account_id"]: a["id"] for a in accounts}
    await proxy.fake.consume("acc_r2", 1_500_000)  # the least headroom: the default strategy avoids it
    await proxy.serve(3)  # the balancer learns every account's windows from its answers
    await api(proxy, "PUT", f"/api/accounts/{ids['acc_r2']}/policy", {"routing_policy": "burn_first"})
    assert await proxy.serve(3) == ["acc_r2"] * 3
    assert await proxy.serve(2, session_key="a new conversation") == ["acc_r2"] * 2
    await api(proxy, "PUT", f"/api/accounts/{ids['acc_r2']}/policy", {"routing_policy": "normal"})
    await api(
        proxy,
        "PUT",
        f"/api/accounts/{ids['acc_r1']}/policy",
        {"routing_policy": "preserve", "reserve_percent": 100},
    )
    await api(
        proxy,
        "PUT",
        f"/api/accounts/{ids['acc_r3']}/policy",
        {"routing_policy": "preserve", "reserve_percent": 100},
    )
    assert await proxy.serve(2) == ["acc_r2"] * 2  # the only one not held in reserve
    await api(proxy, "POST", f"/api/accounts/{ids['acc_r2']}/pause")
    assert len(await proxy.serve(1)) == 1  # the reserve serves when nothing else can
    routings = [row["routing"] for row in await proxy.request_logs(11)][:8]
    assert (
        routings
        == ["preserve_floor", "usage_weighted", "usage_weighted", "sticky", "burn_first"] + ["burn_first"] * 3
    )


async def test_the_earlier_reset_setting_spends_the_soonest_window_first(proxy):
    await proxy.add_accounts("acc_e1", "acc_e2")
    await proxy.serve(2)
    async with aiohttp.ClientSession() as session:
        async with session.put(
            proxy.url + "/api/settings", json={"prefer_earlier_reset": "weekly"}
        ) as answer:
            assert answer.status == 200 and (await answer.json())["prefer_earlier_reset"] == "weekly"
    slots = proxy.server.app.ctx.proxy.slots
    roster = proxy.server.app.ctx.proxy.roster
    by_account = {r.chatgpt_account_id: r.slot for r in roster.accounts}
    served = []
    for soonest in ("acc_e2", "acc_e1"):
        for account_id, slot in by_account.items():  # as the windows the last answers reported
            slots.set(
                slot, Field.SECONDARY_RESET_AT, time.time() + (3600 if account_id == soonest else 86400)
            )
        served += await proxy.serve(1)
    assert served == ["acc_e2", "acc_e1"]
    assert [row["routing"] for row in await proxy.request_logs(4)][:2] == ["earlier_reset"] * 2


async def test_new_conversations_avoid_an_account_about_to_run_out_and_old_ones_stay(proxy):
    accounts = await proxy.add_accounts("acc_h1", "acc_h2", "acc_h3")
    ids = {a["chatgpt_account_id"]: a["id"] for a in accounts}
    home = (await proxy.serve(1, session_key="an old conversation"))[0]
    await proxy.fake.consume(home, 9_800_000)  # 98 % of its 5-hour window: too little for a long conversation
    await proxy.server.app.ctx.proxy.upkeep.poll_usage()  # the balancer learns it, as every poll does
    assert await proxy.serve(2, session_key="an old conversation") == [home] * 2  # stays where it began
    for n in range(8):
        assert (await proxy.serve(1, session_key=f"new conversation {n}")) != [home]
    routings = [(row["account_id"], row["routing"]) for row in await proxy.request_logs(11)][:10]
    assert {routing for _, routing in routings[:8]} == {"headroom"}
    assert routings[8:] == [(ids[home], "sticky")] * 2
