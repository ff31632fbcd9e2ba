"""Header templates for upstream calls: what of the client's headers passes through, what is set.

Client headers pass through an allow-list: the client's Authorization, our API keys, cookies, Origin and
forwarding/proxy headers never go upstream.
"""

from __future__ import annotations

from collections.abc import Mapping

# An allow-list: only what the Codex backend reads travels upstream (identity, conversation and turn
# headers, beta flags, tracing). Anything else a client sends (x-api-key, api-key, cookies, Origin,
# proxy and forwarding headers, SDK fingerprints) stays here, whatever new header a client invents.
_FORWARDED = frozenset(
    {
        "originator",
        "user-agent",
        "version",
        "openai-beta",
        "session-id",
        "session_id",
        "thread-id",
        "thread_id",
        "conversation-id",
        "conversation_id",
        "x-client-request-id",
        "traceparent",
        "tracestate",
    }
)
# Codex and OpenAI families (x-codex-turn-state, -turn-metadata, -window-id, -beta-features,
# x-openai-subagent, …), except our own and the installation id the CLI ties to its machine.
_FORWARDED_PREFIXES = ("x-codex-", "x-openai-")
_WITHHELD = frozenset({"x-codex-installation-id"})
_WITHHELD_PREFIXES = ("x-codex-lb-", "x-openai-internal-")
DEFAULT_USER_AGENT = "codex_cli_rs/0.169.0 (codex-lb)"
DEFAULT_ORIGINATOR = "codex_cli_rs"


def forwardable(inbound: Mapping[str, str]) -> dict[str, str]:
    """The client's headers that may travel upstream (session, thread, turn metadata, beta, identity)."""
    kept = {}
    for name, value in inbound.items():
        lower = name.lower()
        if lower in _FORWARDED or (
            lower.startswith(_FORWARDED_PREFIXES)
            and lower not in _WITHHELD
            and not lower.startswith(_WITHHELD_PREFIXES)
        ):
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
