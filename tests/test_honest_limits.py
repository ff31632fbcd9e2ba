"""Key limits that say what is true: small budgets serve more than one request (a request holds at most
what the rule has left), and served requests are counted apart from refused ones."""

from __future__ import annotations

import pytest

from tests.support.keys import bearer, create_key, set_key_auth
from tests.support.proxy import proxy_settings, serve_proxy
from tests.test_key_enforcement import OPENAI, _settled, openai_body


@pytest.fixture
async def proxy_default_allowance(tmp_path, database_url, fake_upstream):
    """codex-lb with the default output allowance (4096 tokens held per request)."""
    settings = proxy_settings(tmp_path, database_url, fake_upstream)
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def test_a_300_token_daily_budget_serves_more_than_one_request(proxy_default_allowance):
    proxy = proxy_default_allowance
    await proxy.add_accounts("acc_small", reply_text="Short.")
    key = await create_key(proxy.url, limits=[{"quantity": "tokens", "window": "day", "max": 300}])
    await set_key_auth(proxy.url, True)
    statuses = []
    for _ in range(40):
        await _settled(proxy, key)
        answer = await proxy.post(OPENAI, openai_body(), bearer(key))
        statuses.append(answer.status)
        if answer.status != 200:
            break
    served = statuses.count(200)
    assert served > 1, statuses  # with 4096 output tokens held per request, only one ever ran
    refusal = answer.json()["error"]
    assert refusal["code"] == "api_key_limit_reached" and "300 tokens per day" in refusal["message"]
    usage = await _settled(proxy, key)
    [limit] = usage["limits"]
    # Refused only once the budget is spent; the last request served may overshoot it by its own use.
    assert limit["used"] >= 300 and limit["remaining"] == 0
    for _ in range(3):
        assert (await proxy.post(OPENAI, openai_body(), bearer(key))).status == 429
    await proxy.request_logs(served + 4)
    usage = await _settled(proxy, key)
    assert (usage["request_count"], usage["refused_count"]) == (served, 4)
