"""OAuth server state of the fake: authorization codes, spent refresh tokens, device logins, login queue.
Owns PKCE checks and refresh-token single use (a rotated token answered twice is `refresh_token_reused`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field

from .tokens import CLIENT_ID, Identity

CODE_TTL_S = 600
DEVICE_TTL_S = 900
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    identity: Identity
    client_id: str
    redirect_uri: str | None  # None: any `/deviceauth/callback` URI (device logins)
    code_challenge: str
    expires_at: float


@dataclass(slots=True)
class DeviceLogin:
    device_auth_id: str
    user_code: str
    expires_at: float
    state: str = "pending"  # pending, approved, denied
    authorization_code: str | None = None
    code_verifier: str | None = None


@dataclass(slots=True)
class Grants:
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    spent_refresh_tokens: set[str] = field(default_factory=set)
    devices: dict[str, DeviceLogin] = field(default_factory=dict)  # by user_code
    login_queue: list[dict] = field(default_factory=list)  # next identities to log in
    login_counter: int = 0
    device_interval_s: int = 5
    device_ttl_s: float = DEVICE_TTL_S
    authorize_error: str | None = None

    def issue_code(self, identity: Identity, client_id: str, redirect_uri: str | None, challenge: str) -> str:
        code = "ac_" + secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            identity, client_id, redirect_uri, challenge, time.time() + CODE_TTL_S
        )
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> Identity | str:
        """The identity the code was issued for, or the reason (an OAuth error description) it fails."""
        grant = self.codes.pop(code, None)
        if grant is None or grant.expires_at < time.time():
            return "Invalid or expired authorization code."
        if client_id != grant.client_id:
            return "client_id does not match the authorization request."
        if grant.redirect_uri is None:
            if not redirect_uri.endswith("/deviceauth/callback"):
                return "redirect_uri does not match the authorization request."
        elif redirect_uri != grant.redirect_uri:
            return "redirect_uri does not match the authorization request."
        if not verifier or pkce_challenge(verifier) != grant.code_challenge:
            return "PKCE verification failed: code_verifier does not match code_challenge."
        return grant.identity

    def spend_refresh_token(self, token: str) -> bool:
        """True the first time a refresh token is used; False on every reuse."""
        if token in self.spent_refresh_tokens:
            return False
        self.spent_refresh_tokens.add(token)
        return True

    def next_login(self) -> dict:
        if self.login_queue:
            return self.login_queue.pop(0)
        self.login_counter += 1
        return {"account_id": f"acc_login_{self.login_counter}"}

    def start_device_login(self) -> DeviceLogin:
        user_code = "-".join("".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(4)) for _ in range(2))
        login = DeviceLogin("deviceauth_" + secrets.token_hex(12), user_code, time.time() + self.device_ttl_s)
        self.devices[user_code] = login
        return login

    def decide_device_login(self, user_code: str, identity: Identity | None) -> DeviceLogin | None:
        """Approve (with the identity) or deny (identity None) a pending device login."""
        login = self.devices.get(user_code.strip().upper())
        if login is None:
            return None
        if identity is None:
            login.state = "denied"
            return login
        verifier = secrets.token_urlsafe(43)
        login.code_verifier = verifier
        login.authorization_code = self.issue_code(identity, CLIENT_ID, None, pkce_challenge(verifier))
        login.state = "approved"
        return login

    def reset(self) -> None:
        self.codes.clear()
        self.spent_refresh_tokens.clear()
        self.devices.clear()
        self.login_queue.clear()
        self.login_counter = 0
        self.device_interval_s = 5
        self.device_ttl_s = DEVICE_TTL_S
        self.authorize_error = None
