"""An async client for a running fake upstream's test hooks (works for in-process and subprocess).
Owns the public test API: URLs, configure, stats, requests, reset, accounts, token expiry, device approval."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

_TIMEOUT_S = 10


class HookError(RuntimeError):
    pass


class FakeUpstreamControl:
    """Drive a fake upstream at `url` (e.g. http://127.0.0.1:PORT)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    @property
    def base_url(self) -> str:
        """The proxy's UPSTREAM_BASE_URL."""
        return f"{self.url}/backend-api"

    @property
    def auth_url(self) -> str:
        """The proxy's AUTH_BASE_URL."""
        return self.url

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/backend-api/codex/responses"

    async def _call(self, method: str, path: str, body: object = None) -> object:
        # A test's event loop also serves the proxy under test: the round trip must not hold it up.
        return await asyncio.to_thread(self._call_blocking, method, path, body)

    def _call_blocking(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as answer:  # noqa: S310 (loopback only)
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise HookError(f"{method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}") from exc

    async def configure(
        self, defaults: dict | None = None, accounts: dict[str, dict] | None = None, **top_level: object
    ) -> dict:
        """Merge behaviour: `defaults` for every account, `accounts` per account id; also next_login,
        device_interval_s, device_ttl_s, authorize_error. Answers the whole config."""
        body: dict = dict(top_level)
        if defaults is not None:
            body["defaults"] = defaults
        if accounts is not None:
            body["accounts"] = accounts
        return await self._call("POST", "/__config", body)  # type: ignore[return-value]

    async def configure_account(self, account_id: str, **behaviour: object) -> dict:
        return await self.configure(accounts={account_id: behaviour})

    async def config(self) -> dict:
        return await self._call("GET", "/__config")  # type: ignore[return-value]

    async def stats(self) -> dict:
        return await self._call("GET", "/__stats")  # type: ignore[return-value]

    async def account_stats(self, account_id: str) -> dict:
        return (await self.stats())["accounts"].get(account_id, {})

    async def requests(
        self, limit: int = 100, account: str | None = None, path: str | None = None
    ) -> list[dict]:
        query = f"?limit={limit}"
        if account:
            query += f"&account={account}"
        if path:
            query += f"&path={path}"
        return await self._call("GET", "/__requests" + query)  # type: ignore[return-value]

    async def reset(self) -> None:
        await self._call("POST", "/__reset", {})

    async def create_account(
        self,
        account_id: str | None = None,
        *,
        email: str | None = None,
        plan_type: str = "plus",
        access_ttl_s: int | None = None,
        **behaviour: object,
    ) -> dict:
        """Register an account (keyword arguments are its behaviour) and answer its auth.json."""
        body: dict = {"plan_type": plan_type}
        if account_id:
            body["account_id"] = account_id
        if email:
            body["email"] = email
        if access_ttl_s:
            body["access_ttl_s"] = access_ttl_s
        if behaviour:
            body["behaviour"] = behaviour
        return await self._call("POST", "/__accounts", body)  # type: ignore[return-value]

    async def expire_tokens(self, account_id: str, code: str = "token_expired") -> None:
        """Access tokens issued so far answer 401 `code`; refreshed ones work."""
        await self._call("POST", f"/__accounts/{account_id}/expire-tokens", {"code": code})

    async def consume(self, account_id: str, tokens: int, model: str | None = None) -> dict:
        """Spend `tokens` of the account's window budgets, as if turns (of `model`) had used them."""
        body = {"tokens": tokens, "model": model}
        return await self._call("POST", f"/__accounts/{account_id}/consume", body)  # type: ignore

    async def approve_device(self, user_code: str, account: str | None = None, deny: bool = False) -> bool:
        try:
            await self._call(
                "POST", "/__device/approve", {"user_code": user_code, "account": account, "deny": deny}
            )
        except HookError:
            return False
        return True

    async def healthy(self) -> bool:
        try:
            return bool(await self._call("GET", "/__health"))
        except (OSError, HookError):
            return False
