"""One finished request (or WebSocket turn): what the access line, the metrics and the request log say
about it.

The proxy builds a FinishedRequest once, when a request settles, and hands the same value to all three;
nothing here does I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from server.usage.tokens import TokenUsage


def new_request_id() -> str:
    """`req_` + 24 hex digits: unique enough to find one request in logs and the request log."""
    return "req_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedRequest:
    request_id: str
    started_at: float  # epoch seconds
    route: str
    transport: str  # the client's: "http" or "websocket"
    status: int
    account_id: int | None = None
    api_key_id: int | None = None
    model: str = ""
    reasoning_effort: str = ""
    error_code: str = ""
    usage: TokenUsage | None = None  # None when upstream reported no usage (failed before a terminal event)
    cost_usd: float | None = None  # None when the model has no price or there was no usage
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempts: int = 1
    session_key_hash: str = ""
    routing: str = ""
    upstream_transport: str = ""  # "http" or "websocket"; "" when no account was reached
    egress: str = ""  # the account's route: "" direct, "proxy:<name>"
    user_agent: str = ""  # the client's, cut to USER_AGENT_MAX
    failovers: str = ""  # "<account id>:<code>" of each attempt that failed over, comma-separated
    # Not stored: the access line's and the metrics' own.
    reason: str = ""  # the error message the client got
    upstream_ms: float | None = None  # from the first byte sent upstream to the end; None: never sent
    overhead_ms: float | None = None  # what the proxy added before the head went out; None: no head
