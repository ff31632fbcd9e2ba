"""The accounts list says when each account last served a request (the dashboard's "last used")."""

from __future__ import annotations

import time

from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body


async def test_an_account_that_served_a_request_shows_when(proxy):
    first, second = await proxy.add_accounts("acct-a", "acct-b")
    before = time.time()
    answer = await proxy.post(CODEX_ROUTE, codex_body("hi"), headers={"session_id": "s-1"})
    assert answer.status == 200
    (served,) = await proxy.request_logs(1)

    async def accounts_by_id() -> dict[int, dict]:
        return {a["id"]: a for a in await proxy.accounts()}

    accounts = await eventually(
        accounts_by_id, lambda accounts: accounts[served["account_id"]]["last_used_at"], timeout=10
    )
    used = accounts[served["account_id"]]
    idle = accounts[({first["id"], second["id"]} - {served["account_id"]}).pop()]
    assert before - 1 <= used["last_used_at"] <= time.time()
    assert idle["last_used_at"] is None
