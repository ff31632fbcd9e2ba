"""Reads the claims codex-lb needs from ChatGPT's JWTs (payload only; the upstream checks signatures)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


class InvalidToken(ValueError):
    """Not a JWT whose payload codex-lb can read."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    account_id: str
    plan_type: str
    email: str
    user_id: str
    expires_at: float


def decode_payload(token: str) -> dict:
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWT (expected three dot-separated parts)")
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidToken("JWT payload is not base64url JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidToken("JWT payload is not an object")
    return payload


def read_claims(*tokens: str) -> TokenClaims:
    """Merge the claims of the given tokens (access token first, then id token)."""
    merged_auth: dict = {}
    email = ""
    expires_at = 0.0
    for index, token in enumerate(tokens):
        if not token:
            continue
        payload = decode_payload(token)
        auth = payload.get(AUTH_CLAIM)
        if isinstance(auth, dict):
            for key, value in auth.items():
                merged_auth.setdefault(key, value)
        profile = payload.get(PROFILE_CLAIM)
        email = email or str(payload.get("email") or (profile or {}).get("email") or "")
        if index == 0 and isinstance(payload.get("exp"), (int, float)):
            expires_at = float(payload["exp"])
    return TokenClaims(
        account_id=str(merged_auth.get("chatgpt_account_id") or ""),
        plan_type=str(merged_auth.get("chatgpt_plan_type") or ""),
        email=email,
        user_id=str(merged_auth.get("chatgpt_user_id") or merged_auth.get("user_id") or ""),
        expires_at=expires_at,
    )
