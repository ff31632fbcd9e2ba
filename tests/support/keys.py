"""Helpers for API-key tests: create keys and flip API-key auth through the dashboard API."""

from __future__ import annotations

import aiohttp


async def api(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url + path, json=body) as response:
            payload = await response.json() if response.status != 204 else None
            return response.status, payload


async def create_key(url: str, **spec) -> dict:
    spec.setdefault("name", "test key")
    status, body = await api(url, "POST", "/api/api-keys", spec)
    assert status == 201, body
    return body


async def set_key_auth(url: str, enabled: bool) -> None:
    status, body = await api(url, "PUT", "/api/settings", {"api_key_auth_enabled": enabled})
    assert status == 200 and body["api_key_auth_enabled"] is enabled, body


def bearer(key: dict | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key if isinstance(key, str) else key['key']}"}
