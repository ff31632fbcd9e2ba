"""OAuth calls to the ChatGPT auth server: the refresh grant (and, later, code exchange).

Refresh tokens rotate and are single-use; codes that mean the login is gone are reported as permanent.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import orjson

from server.upstream.client import JSON_TIMEOUT

CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
PERMANENT_REFRESH_ERRORS = frozenset(
    {
        "refresh_token_reused",
        "refresh_token_expired",
        "refresh_token_invalidated",
        "invalid_grant",
        "app_session_terminated",
        "account_session_expired",
    }
)


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    access_token: str
    refresh_token: str
    id_token: str
    expires_in: float


class RefreshError(Exception):
    def __init__(self, code: str, message: str, permanent: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent


async def refresh_grant(
    session: aiohttp.ClientSession, auth_base_url: str, refresh_token: str
) -> TokenAnswer:
    body = orjson.dumps(
        {
            "client_id": CODEX_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": "openid profile email",
        }
    )
    try:
        async with session.post(
            f"{auth_base_url}/oauth/token",
            data=body,
            headers={"content-type": "application/json", "accept": "application/json"},
            timeout=JSON_TIMEOUT,
        ) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RefreshError(
            "refresh_unreachable", f"token endpoint unreachable ({type(exc).__name__})", False
        ) from exc
    document = _json_or_empty(raw)
    if status == 200 and isinstance(document.get("access_token"), str):
        return TokenAnswer(
            access_token=document["access_token"],
            refresh_token=str(document.get("refresh_token") or refresh_token),
            id_token=str(document.get("id_token") or ""),
            expires_in=float(document.get("expires_in") or 0),
        )
    code, message = _error_of(document, status)
    return _raise(code, message, status)


def _raise(code: str, message: str, status: int):
    permanent = code in PERMANENT_REFRESH_ERRORS or (status in (400, 401) and code == "invalid_request")
    raise RefreshError(code, message, permanent)


def _json_or_empty(raw: bytes) -> dict:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_of(document: dict, status: int) -> tuple[str, str]:
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or f"http_{status}"), str(
            error.get("message") or ""
        )
    if isinstance(error, str):
        return error, str(document.get("error_description") or "")
    return f"http_{status}", "unexpected answer from the token endpoint"
