"""Credentials of fake accounts: signed JWT access/id tokens, self-describing refresh tokens, auth.json.
Owns the shared signing secret, so tokens minted offline are accepted by any running fake upstream."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ISSUER = "https://auth.openai.com"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
# Nanosecond issue time: lets "expire every token issued so far" spare tokens refreshed a moment later.
ISSUED_NS_CLAIM = "https://fake-upstream.invalid/issued_ns"
DEFAULT_ACCESS_TTL_S = 10 * 24 * 3600
PLAN_TYPES = ("free", "plus", "pro", "prolite", "team", "business", "enterprise", "edu")

_SECRET = b"codex-lb fake upstream shared signing secret"
_JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"fake"}').rstrip(b"=").decode()
_REFRESH_PREFIX = "rt_"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a fake account is: the claims every token of the account carries."""

    account_id: str
    email: str
    plan_type: str = "plus"
    user_id: str = ""

    @classmethod
    def of(cls, account_id: str, email: str | None = None, plan_type: str | None = None) -> Identity:
        return cls(
            account_id=account_id,
            email=email or f"{account_id}@fake-upstream.invalid",
            plan_type=plan_type or "plus",
            user_id=f"user-{account_id}",
        )


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int

    def as_oauth_answer(self) -> dict:
        return {
            "access_token": self.access_token,
            "id_token": self.id_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": "openid profile email offline_access",
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(message: bytes) -> str:
    return _b64(hmac.new(_SECRET, message, hashlib.sha256).digest())


def sign_jwt(claims: dict) -> str:
    signing_input = f"{_JWT_HEADER}.{_b64(orjson.dumps(claims))}"
    return f"{signing_input}.{_signature(signing_input.encode())}"


def verify_jwt(token: str) -> dict | None:
    """The token's claims when it is a JWT this fake signed, else None (expiry is the caller's call)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = _signature(f"{parts[0]}.{parts[1]}".encode())
    if not hmac.compare_digest(expected, parts[2]):
        return None
    try:
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def identity_from_claims(claims: dict) -> Identity | None:
    auth = claims.get(AUTH_CLAIM)
    if not isinstance(auth, dict) or not auth.get("chatgpt_account_id"):
        return None
    email = claims.get("email") or (claims.get(PROFILE_CLAIM) or {}).get("email")
    return Identity(
        account_id=auth["chatgpt_account_id"],
        email=email or f"{auth['chatgpt_account_id']}@fake-upstream.invalid",
        plan_type=auth.get("chatgpt_plan_type") or "plus",
        user_id=auth.get("chatgpt_user_id") or f"user-{auth['chatgpt_account_id']}",
    )


def _auth_claim(identity: Identity) -> dict:
    return {
        "chatgpt_account_id": identity.account_id,
        "chatgpt_plan_type": identity.plan_type,
        "chatgpt_user_id": identity.user_id,
        "user_id": identity.user_id,
    }


def mint_access_token(
    identity: Identity, ttl_s: int = DEFAULT_ACCESS_TTL_S, issued_ns: int | None = None
) -> str:
    issued_ns = issued_ns or time.time_ns()
    iat = issued_ns // 1_000_000_000
    return sign_jwt(
        {
            "iss": ISSUER,
            "aud": ["https://api.openai.com/v1"],
            "sub": f"auth0|{identity.user_id}",
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(ttl_s),
            "jti": secrets.token_hex(8),
            "scp": ["openid", "profile", "email", "offline_access"],
            "client_id": CLIENT_ID,
            AUTH_CLAIM: _auth_claim(identity),
            PROFILE_CLAIM: {"email": identity.email, "email_verified": True},
            ISSUED_NS_CLAIM: issued_ns,
        }
    )


def mint_id_token(identity: Identity, issued_ns: int | None = None) -> str:
    iat = (issued_ns or time.time_ns()) // 1_000_000_000
    return sign_jwt(
        {
            "iss": ISSUER,
            "aud": [CLIENT_ID],
            "sub": f"auth0|{identity.user_id}",
            "iat": iat,
            "exp": iat + 3600,
            "email": identity.email,
            "email_verified": True,
            AUTH_CLAIM: {**_auth_claim(identity), "organizations": []},
        }
    )


def mint_refresh_token(identity: Identity) -> str:
    """`rt_<payload>.<sig>`: any fake can tell whose it is; single use is tracked by the fake that sees it."""
    payload = _b64(
        orjson.dumps(
            {
                "a": identity.account_id,
                "e": identity.email,
                "p": identity.plan_type,
                "u": identity.user_id,
                "n": secrets.token_hex(8),
            }
        )
    )
    return f"{_REFRESH_PREFIX}{payload}.{_signature(payload.encode())[:24]}"


def read_refresh_token(token: str) -> Identity | None:
    if not token.startswith(_REFRESH_PREFIX) or "." not in token:
        return None
    payload, _, signature = token[len(_REFRESH_PREFIX) :].rpartition(".")
    if not hmac.compare_digest(_signature(payload.encode())[:24], signature):
        return None
    try:
        fields = orjson.loads(_unb64(payload))
        return Identity(account_id=fields["a"], email=fields["e"], plan_type=fields["p"], user_id=fields["u"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def mint_token_set(
    identity: Identity, access_ttl_s: int = DEFAULT_ACCESS_TTL_S, issued_ns: int | None = None
) -> TokenSet:
    issued_ns = issued_ns or time.time_ns()
    return TokenSet(
        access_token=mint_access_token(identity, access_ttl_s, issued_ns),
        id_token=mint_id_token(identity, issued_ns),
        refresh_token=mint_refresh_token(identity),
        expires_in=int(access_ttl_s),
    )


def auth_json_of(tokens: TokenSet, identity: Identity) -> dict:
    return {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": tokens.id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": identity.account_id,
        },
        "last_refresh": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def mint_auth_json(
    account_id: str | None = None,
    *,
    email: str | None = None,
    plan_type: str = "plus",
    access_ttl_s: int = DEFAULT_ACCESS_TTL_S,
) -> dict:
    """A Codex CLI `~/.codex/auth.json` for a fake account; every fake upstream accepts it as is."""
    identity = Identity.of(account_id or f"acc_{secrets.token_hex(6)}", email, plan_type)
    return auth_json_of(mint_token_set(identity, access_ttl_s), identity)
