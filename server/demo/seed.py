"""The demo's pool: three fake ChatGPT accounts on different plans with different window usage,
registered on the fake backend and imported through the server's own API, as a user would."""

from __future__ import annotations

import aiohttp
import orjson

from server.demo.extras import DemoAccount

# Small budgets so that the spent share shows as a plain percentage on the first usage poll; what is
# spent counts against both windows (5 h: 12/55/91 %, weekly: 3/14/23 %).
PRIMARY_BUDGET_TOKENS = 1_000_000
SECONDARY_BUDGET_TOKENS = 4_000_000
ACCOUNTS = (
    DemoAccount("demo-plus", "ada@example.com", "plus", 12),
    DemoAccount("demo-pro", "grace@example.com", "pro", 55),
    DemoAccount("demo-team", "linus@example.com", "team", 91),
)
TIMEOUT = aiohttp.ClientTimeout(total=30)


async def register_on_fake(session: aiohttp.ClientSession, fake_url: str, account: DemoAccount) -> dict:
    """The account's auth.json, after spending its share of the 5-hour window."""
    body = {
        "account_id": account.account_id,
        "email": account.email,
        "plan_type": account.plan_type,
        "behaviour": {
            "primary_budget_tokens": PRIMARY_BUDGET_TOKENS,
            "secondary_budget_tokens": SECONDARY_BUDGET_TOKENS,
            "reply_text": "Hello from the codex-lb demo: fake account {account_id} answered ({model}).",
            "delta_interval_ms": 30,
        },
    }
    async with session.post(fake_url + "/__accounts", json=body) as response:
        response.raise_for_status()
        auth = await response.json()
    spent = PRIMARY_BUDGET_TOKENS * account.primary_used_percent // 100
    async with session.post(
        f"{fake_url}/__accounts/{account.account_id}/consume", json={"tokens": spent}
    ) as response:
        response.raise_for_status()
    return auth


async def add_accounts(fake_url: str, server_url: str) -> list[DemoAccount]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        form = aiohttp.FormData()
        for account in ACCOUNTS:
            auth = await register_on_fake(session, fake_url, account)
            form.add_field(
                "auth_json", orjson.dumps(auth), filename=f"{account.account_id}.json",
                content_type="application/json",
            )  # fmt: skip
        async with session.post(server_url + "/api/accounts/import", data=form) as response:
            if response.status != 200:
                raise RuntimeError(f"importing the demo accounts failed: {await response.text()}")
    return list(ACCOUNTS)
