"""GET {backend}/wham/usage: an account's quota windows, credits and plan, as the ChatGPT app reads them."""

from __future__ import annotations

import aiohttp

from server.upstream.headers import DEFAULT_USER_AGENT

USAGE_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)


async def fetch_usage(
    session: aiohttp.ClientSession, base_url: str, access_token: str, chatgpt_account_id: str
) -> tuple[int, bytes]:
    """(status, body). Transport errors propagate (aiohttp.ClientError, TimeoutError)."""
    headers = {
        "authorization": f"Bearer {access_token}",
        "chatgpt-account-id": chatgpt_account_id,
        "accept": "application/json",
        "user-agent": DEFAULT_USER_AGENT,
    }
    async with session.get(f"{base_url}/wham/usage", headers=headers, timeout=USAGE_TIMEOUT) as response:
        return response.status, await response.read()
