"""Header templates for upstream calls: what of the client's headers passes through, what is set.

The client's Authorization and our API keys never go upstream; forwarding/proxy headers are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

_DROPPED = frozenset(
    {
        "authorization",
        "chatgpt-account-id",
        "content-length",
        "content-encoding",
        "host",
        "forwarded",
        "x-real-ip",
        "true-client-ip",
        "x-codex-installation-id",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
        "cookie",
        "content-type",
        "accept",
        "proxy-authorization",
        "proxy-connection",
        "expect",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)
_DROPPED_PREFIXES = ("x-forwarded-", "cf-", "x-codex-lb-", "x-stainless-")
DEFAULT_USER_AGENT = "codex_cli_rs/0.169.0 (codex-lb)"
DEFAULT_ORIGINATOR = "codex_cli_rs"


def forwardable(inbound: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that may travel upstream (session, thread, turn metadata, beta, identity)."""
    kept = {}
    for name, value in inbound.items():
        lower = name.lower()
        if lower in _DROPPED or lower.startswith(_DROPPED_PREFIXES):
            continue
        kept[lower] = value
    kept.setdefault("user-agent", DEFAULT_USER_AGENT)
    kept.setdefault("originator", DEFAULT_ORIGINATOR)
    return kept


def for_responses(forwarded: dict[str, str], access_token: str, chatgpt_account_id: str) -> dict[str, str]:
    headers = dict(forwarded)
    headers["authorization"] = f"Bearer {access_token}"
    headers["chatgpt-account-id"] = chatgpt_account_id
    headers["accept"] = "text/event-stream"
    headers["content-type"] = "application/json"
    return headers


def for_json(access_token: str, chatgpt_account_id: str, forwarded: Mapping[str, str] | None = None) -> dict:
    headers = dict(forwarded or {})
    headers["authorization"] = f"Bearer {access_token}"
    headers["chatgpt-account-id"] = chatgpt_account_id
    headers["accept"] = "application/json"
    return headers
