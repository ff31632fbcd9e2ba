"""Parses a Codex CLI `auth.json` into the credentials of one ChatGPT account."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from server.accounts.claims import InvalidToken, read_claims

MAX_AUTH_JSON_BYTES = 256 * 1024


class InvalidAuthJson(ValueError):
    """The file is not a usable Codex auth.json; the message says why, without any token in it."""


@dataclass(frozen=True, slots=True)
class Credentials:
    chatgpt_account_id: str
    email: str
    plan_type: str
    access_token: str
    refresh_token: str
    id_token: str
    access_expires_at: float
    last_refresh_at: float
    source: str = "auth.json import"  # how they arrived, for the account's history


def parse_auth_json(raw: bytes) -> Credentials:
    if len(raw) > MAX_AUTH_JSON_BYTES:
        raise InvalidAuthJson("file is too large to be an auth.json")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidAuthJson("not valid JSON") from None
    tokens = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(tokens, dict):
        raise InvalidAuthJson('no "tokens" object: sign in with ChatGPT in the Codex CLI first')
    fields = {}
    for name in ("access_token", "refresh_token", "id_token"):
        value = tokens.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidAuthJson(f'"tokens.{name}" is missing')
        fields[name] = value
    try:
        claims = read_claims(fields["access_token"], fields["id_token"])
    except InvalidToken as exc:
        raise InvalidAuthJson(f"tokens are not ChatGPT JWTs ({exc})") from None
    account_id = str(tokens.get("account_id") or claims.account_id)
    if not account_id:
        raise InvalidAuthJson("no ChatGPT account id in tokens.account_id or the token claims")
    return Credentials(
        chatgpt_account_id=account_id,
        email=claims.email,
        plan_type=claims.plan_type,
        access_expires_at=claims.expires_at,
        last_refresh_at=_parse_time(document.get("last_refresh")),
        **fields,
    )


def _parse_time(value) -> float:
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def credentials_from_tokens(access_token: str, refresh_token: str, id_token: str, source: str) -> Credentials:
    """Credentials from a sign-in's token answer (browser or device code)."""
    try:
        claims = read_claims(access_token, id_token)
    except InvalidToken as exc:
        raise InvalidAuthJson(f"the auth server answered tokens that are not ChatGPT JWTs ({exc})") from None
    if not claims.account_id:
        raise InvalidAuthJson("the tokens carry no ChatGPT account id")
    return Credentials(
        chatgpt_account_id=claims.account_id,
        email=claims.email,
        plan_type=claims.plan_type,
        access_token=access_token,
        refresh_token=refresh_token,
        id_token=id_token,
        access_expires_at=claims.expires_at,
        last_refresh_at=time.time(),
        source=source,
    )


def to_auth_json(
    access_token: str, refresh_token: str, id_token: str, account_id: str, last_refresh: float
) -> dict:
    """The Codex CLI's ~/.codex/auth.json layout, for exporting an account back to its owner."""
    stamp = datetime.fromtimestamp(last_refresh or time.time(), UTC).isoformat().replace("+00:00", "Z")
    return {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "account_id": account_id,
        },
        "last_refresh": stamp,
    }
