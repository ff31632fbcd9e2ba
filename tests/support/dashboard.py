"""A browser-like client of the dashboard API: a cookie jar, and a chosen client address.

The test server trusts the loopback peer as a reverse proxy, so `X-Forwarded-For` decides whether a
request counts as local (127.0.0.1) or remote (any other address), as it would behind a real proxy.
"""

from __future__ import annotations

import aiohttp

REMOTE = "203.0.113.9"
LOCAL = "127.0.0.1"
PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "look but do not touch"
TRUST_LOOPBACK_PROXY = {
    "firewall_trusted_proxy_cidrs": "127.0.0.1/32",
    "firewall_trust_proxy_headers": "true",
}


class Browser:
    def __init__(self, base_url: str, address: str = REMOTE, headers: dict | None = None) -> None:
        self.base_url = base_url
        self.headers = {"X-Forwarded-For": address, **(headers or {})}
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body=None, headers: dict | None = None):
        """(status, parsed JSON or None, response headers)"""
        kwargs = {"json": body} if body is not None else {}
        async with self.session.request(
            method, self.base_url + path, headers={**self.headers, **(headers or {})}, **kwargs
        ) as response:
            raw = await response.read()
            payload = None
            if raw and response.content_type == "application/json":
                payload = await response.json()
            return response.status, payload, response.headers

    async def status(self) -> dict:
        code, body, _ = await self.call("GET", "/api/auth/status")
        assert code == 200, body
        return body

    def cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == "codex_lb_session":
                return cookie.value
        return None


async def first_admin(url: str) -> Browser:
    """A signed-in admin: the first password set by a local request."""
    browser = Browser(url, LOCAL)
    code, body, _ = await browser.call("POST", "/api/auth/password", {"new_password": PASSWORD})
    assert code == 204, body
    return browser


async def sign_in(browser: Browser, password: str = PASSWORD, code: str | None = None):
    body = {"password": password} | ({"totp_code": code} if code else {})
    return await browser.call("POST", "/api/auth/login", body)
