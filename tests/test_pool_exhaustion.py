"""A pool whose every account that could serve is at its usage limit answers 429 usage_limit_reached,
whatever else its accounts have (cooldowns, pauses, lost logins); 503 only for pools down otherwise."""

from __future__ import annotations

import aiohttp

from tests.support.polling import eventually
from tests.support.proxy import codex_body

# Pool exhaustion answers: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

CODEX = "/backend-api/codex/responses"


async def _spent_pool(proxy, *names: str) -> None:
    await proxy.add_accounts(*names, primary_budget_tokens=1)
    for name in names:
        await proxy.fake.consume(name, 10)
    answer = await proxy.post(CODEX, codex_body("learn the windows"))  # the proxy meets each 429 once
    assert answer.status == 429, answer.raw


def _assert_usage_limit(answer, within_s: float) -> None:
    assert answer.status == 429, answer.raw
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("usage_limit_reached", "usage_limit_reached")
    assert 1 <= int(answer.headers["Retry-After"]) <= within_s


async def test_spent_accounts_beside_one_in_error_cooldown_answer_429(proxy):
    await _spent_pool(proxy, "acc_a", "acc_b")
    await proxy.add_accounts("acc_err", failure_rate=1.0, failure_status=500)
    answers = [await proxy.post(CODEX, codex_body(f"q{i}")) for i in range(4)]
    # The first meets the 500 itself (and reports it); after that the account cools down for a
    # second or two, and the pool is what it is: spent, back when that cooldown ends.
    assert answers[0].status == 502, answers[0].raw
    for answer in answers[1:]:
        _assert_usage_limit(answer, within_s=10)


async def test_spent_accounts_beside_a_rate_limited_one_answer_429_at_its_end(proxy):
    await _spent_pool(proxy, "acc_a", "acc_b")
    await proxy.add_accounts("acc_burst", rate_limited=True, retry_after_s=40)
    first = await proxy.post(CODEX, codex_body("meets the burst limit"))
    assert first.status == 429
    again = await proxy.post(CODEX, codex_body("from memory"))
    _assert_usage_limit(again, within_s=41)
    assert int(again.headers["Retry-After"]) >= 30  # the soonest moment: the burst limit's end


async def test_spent_accounts_beside_a_paused_one_answer_429(proxy):
    await _spent_pool(proxy, "acc_a", "acc_b")
    [paused] = await proxy.add_accounts("acc_paused")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{proxy.url}/api/accounts/{paused['id']}/pause") as response:
            assert response.status == 200
    _assert_usage_limit(await proxy.post(CODEX, codex_body("hi")), within_s=300 * 60)


async def test_spent_accounts_beside_one_that_must_sign_in_again_answer_429(proxy):
    await _spent_pool(proxy, "acc_a", "acc_b")
    await proxy.add_accounts("acc_gone", refresh_error="invalid_grant")
    await proxy.fake.expire_tokens("acc_gone")

    async def states_after_a_request() -> dict[
        str, str
    ]:  # the first requests meet the 401 and lose the login
        await proxy.post(CODEX, codex_body("hi"))
        return {a["chatgpt_account_id"]: a["status"] for a in await proxy.accounts()}

    await eventually(
        states_after_a_request, lambda states: states["acc_gone"] == "reauth_required", timeout=10, interval=0
    )
    _assert_usage_limit(await proxy.post(CODEX, codex_body("hi")), within_s=300 * 60)


async def test_a_pool_that_is_only_cooling_down_is_a_503(proxy):
    await proxy.add_accounts("acc_err", failure_rate=1.0, failure_status=500)
    answers = [await proxy.post(CODEX, codex_body(f"q{i}")) for i in range(3)]
    assert answers[-1].status in (502, 503)
    assert all(a.status != 429 for a in answers)
