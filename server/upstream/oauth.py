"""OAuth calls to the ChatGPT auth server: the refresh grant, browser (PKCE) sign-in and device codes.

Refresh tokens rotate and are single-use; codes that mean the login is gone are reported as permanent.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from server.upstream.client import JSON_TIMEOUT

CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
# The only redirect URI the Codex OAuth client accepts for the browser flow (port fixed).
BROWSER_REDIRECT_URI = "http://localhost:1455/auth/callback"
AUTHORIZE_SCOPE = "openid profile email offline_access"
ORIGINATOR = "codex_chatgpt_desktop"
OAUTH_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
# Device-code poll answers that mean "not decided yet".
_DEVICE_PENDING = frozenset({"authorization_pending", "slow_down", "deviceauth_pending", "pending"})
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


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(32)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_auth_id: str
    user_code: str
    interval_s: float
    expires_in_s: float


@dataclass(frozen=True, slots=True)
class DeviceDecision:
    """One poll of a device login: still pending, approved (a code to exchange) or over (error code)."""

    pending: bool
    authorization_code: str = ""
    code_verifier: str = ""
    error: str = ""


class OAuthError(Exception):
    """A sign-in step failed; `code` is the server's error code, the message is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


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


def _text(document: dict, name: str) -> str:
    """A string member of an answer; "" when it is missing or not a string."""
    value = document.get(name)
    return value if isinstance(value, str) else ""


def _error_of(document: dict, status: int) -> tuple[str, str]:
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or f"http_{status}"), str(
            error.get("message") or ""
        )
    if isinstance(error, str):
        return error, str(document.get("error_description") or "")
    return f"http_{status}", "unexpected answer from the token endpoint"


def authorize_url(auth_base_url: str, state: str, code_challenge: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CODEX_CLIENT_ID,
            "redirect_uri": BROWSER_REDIRECT_URI,
            "scope": AUTHORIZE_SCOPE,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "state": state,
            "id_token_add_organizations": "true",
            "codex_cli_simplified_flow": "true",
            "originator": ORIGINATOR,
        },
        quote_via=quote,  # spaces as %20 and "/" escaped, as the Codex app sends them
    )
    return f"{auth_base_url}/oauth/authorize?{query}"


async def exchange_code(
    session: aiohttp.ClientSession, auth_base_url: str, code: str, code_verifier: str, redirect_uri: str
) -> TokenAnswer:
    """The authorization_code grant (form-encoded); all three tokens are required."""
    form = {
        "grant_type": "authorization_code",
        "client_id": CODEX_CLIENT_ID,
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
    }
    status, document = await _post(session, f"{auth_base_url}/oauth/token", form=form)
    access, refresh, id_token = (_text(document, n) for n in ("access_token", "refresh_token", "id_token"))
    if status == 200 and access and refresh and id_token:
        return TokenAnswer(access, refresh, id_token, float(document.get("expires_in") or 0))
    if status == 200:
        raise OAuthError("invalid_response", "the token endpoint did not answer all three tokens")
    code_, message = _error_of(document, status)
    raise OAuthError(code_, message)


async def request_device_code(session: aiohttp.ClientSession, auth_base_url: str) -> DeviceCode:
    status, document = await _post(
        session, f"{auth_base_url}/api/accounts/deviceauth/usercode", json={"client_id": CODEX_CLIENT_ID}
    )
    if status == 404:
        raise OAuthError("device_login_unavailable", "device login is not enabled on this auth server")
    user_code = document.get("user_code") or document.get("usercode")
    if status != 200 or not document.get("device_auth_id") or not user_code:
        code, message = _error_of(document, status)
        raise OAuthError(code, message)
    try:
        interval = float(document.get("interval") or 5)
    except (TypeError, ValueError):
        interval = 5.0
    try:
        expires_in = float(document.get("expires_in") or 900)
    except (TypeError, ValueError):
        expires_in = 900.0
    return DeviceCode(str(document["device_auth_id"]), str(user_code), interval, expires_in)


async def poll_device_code(
    session: aiohttp.ClientSession, auth_base_url: str, device_auth_id: str, user_code: str
) -> DeviceDecision:
    status, document = await _post(
        session,
        f"{auth_base_url}/api/accounts/deviceauth/token",
        json={"device_auth_id": device_auth_id, "user_code": user_code},
    )
    if status == 200 and document.get("authorization_code") and document.get("code_verifier"):
        return DeviceDecision(False, str(document["authorization_code"]), str(document["code_verifier"]))
    code, _message = _error_of(document, status)
    if status in (403, 404) or code in _DEVICE_PENDING or document.get("status") == "pending":
        return DeviceDecision(True)
    return DeviceDecision(False, error=code)


async def _post(
    session: aiohttp.ClientSession, url: str, *, form: dict | None = None, json: dict | None = None
) -> tuple[int, dict]:
    try:
        if form is not None:
            request = session.post(
                url, data=form, headers={"accept": "application/json"}, timeout=OAUTH_TIMEOUT
            )
        else:
            request = session.post(
                url,
                data=orjson.dumps(json),
                headers={"content-type": "application/json", "accept": "application/json"},
                timeout=OAUTH_TIMEOUT,
            )
        async with request as response:
            return response.status, _json_or_empty(await response.read())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OAuthError("auth_unreachable", f"auth server unreachable ({type(exc).__name__})") from exc
