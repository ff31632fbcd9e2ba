"""How a fake account behaves (reply, pacing, quota, failure switches), and the runtime config book.
Owns the merge of built-in defaults, configured defaults and per-account overrides."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class Behaviour:
    # Content and pacing.
    reply_text: str | None = None  # None: "Hello from fake account {account_id}."; {model} also expands
    deltas: int = 0  # output_text deltas per reply; 0 = one per word
    ttfb_ms: float = 0  # delay before the response head
    delta_interval_ms: float = 0  # delay between delta events
    stall_ms: float = 0  # silence right after response.created (idle-timeout tests)
    reasoning_summary_text: str = "Thinking about the request."
    # Quota: tokens per window; window lengths in minutes (secondary 0 = no secondary window).
    plan_type: str | None = None  # overrides the plan in the account's tokens
    primary_budget_tokens: int = 10_000_000
    secondary_budget_tokens: int = 100_000_000
    primary_window_minutes: int = 300
    secondary_window_minutes: int = 10080
    # A per-model bucket (the backend's "codex_other" limit family): these models spend its window
    # instead of the main ones, and are refused once it is spent while other models still work.
    other_models: tuple[str, ...] | list[str] = ()
    other_budget_tokens: int = 10_000_000
    other_window_minutes: int = 300
    credits_has_credits: bool = False
    credits_unlimited: bool = False
    credits_balance: str = "0"
    # Failures before the stream starts.
    rate_limited: bool = False  # 429 rate_limit_exceeded "Please try again in {retry_after_s}s"
    retry_after_s: float = 1.5
    failure_rate: float = 0.0  # 0..1, deterministic (every 1/rate-th request)
    failure_status: int = 500
    failure_body: dict | str | None = None
    failure_limit: int | None = None  # stop injecting after this many failures
    deactivated: bool = False  # 403 account_deactivated (402 on /wham/usage)
    auth_error: str | None = None  # forced 401 with this code (token_expired, token_invalidated, ...)
    check_account_header: bool = True  # chatgpt-account-id must match the token when sent
    reject_unknown_models: bool = True
    # Failures inside a 200 stream.
    overload_in_stream: bool | str = False  # True/"failed": response.failed; "error": an error event
    in_stream_failure_code: str | None = None
    in_stream_failure_as: str = "failed"  # "failed" or "error"
    cut_stream: bool = False  # drop the connection after cut_after_deltas deltas
    cut_after_deltas: int = 1
    # Garbage before the real events: a data line that is not JSON, an event with no data, stray
    # carriage returns, bytes that are not UTF-8 and a comment (fault tests of the SSE parsing).
    malformed_sse: bool = False
    incomplete: bool = False  # response.incomplete, reason max_output_tokens
    completed_output: bool = False  # the terminal event carries the output items (backend: empty)
    # The backend's edge sets cookies on answers (Cloudflare's __cf_bm and the like): one per account.
    set_cookie: bool = False
    # WebSocket.
    ws_reject_upgrade: bool = False  # 426 on the upgrade
    ws_connection_limit_after_turns: int | None = None  # then websocket_connection_limit_reached
    # OAuth.
    # refresh_token_expired, refresh_token_invalidated, invalid_grant; "unavailable": the token endpoint
    # is down (503, not JSON)
    refresh_error: str | None = None
    token_latency_ms: float = 0
    access_token_ttl_s: int = 10 * 24 * 3600

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.failure_rate) <= 1.0:
            raise ValueError("failure_rate must be within 0..1")
        if self.in_stream_failure_as not in ("failed", "error"):
            raise ValueError("in_stream_failure_as must be 'failed' or 'error'")
        if not 100 <= int(self.failure_status) <= 599:
            raise ValueError("failure_status must be an HTTP status")

    @property
    def stream_failure(self) -> tuple[str, str] | None:
        """(code, "failed"|"error") when the stream must fail after response.created."""
        if self.in_stream_failure_code:
            return self.in_stream_failure_code, self.in_stream_failure_as
        if self.overload_in_stream:
            shape = "error" if self.overload_in_stream == "error" else "failed"
            return "server_is_overloaded", shape
        return None


BEHAVIOUR_KEYS = frozenset(f.name for f in fields(Behaviour))
BASE = Behaviour()


def check_keys(overrides: dict) -> None:
    unknown = set(overrides) - BEHAVIOUR_KEYS
    if unknown:
        raise ValueError(f"unknown behaviour keys: {sorted(unknown)}")


class BehaviourBook:
    """Configured defaults and per-account overrides, with the effective Behaviour cached per account."""

    def __init__(self) -> None:
        self.defaults: dict = {}
        self.accounts: dict[str, dict] = {}
        self._effective: dict[str, Behaviour] = {}
        self._default = BASE

    def merge(self, defaults: dict | None = None, accounts: dict[str, dict] | None = None) -> None:
        new_defaults = {**self.defaults, **(defaults or {})}
        new_accounts = {k: dict(v) for k, v in self.accounts.items()}
        for account_id, overrides in (accounts or {}).items():
            new_accounts[account_id] = {**new_accounts.get(account_id, {}), **overrides}
        check_keys(new_defaults)
        for overrides in new_accounts.values():
            check_keys(overrides)
        # Build every effective behaviour first so a bad value leaves the book untouched.
        default = replace(BASE, **new_defaults)
        effective = {a: replace(default, **o) for a, o in new_accounts.items()}
        self.defaults, self.accounts = new_defaults, new_accounts
        self._default, self._effective = default, effective

    def of(self, account_id: str) -> Behaviour:
        return self._effective.get(account_id, self._default)

    def snapshot(self) -> dict:
        return {"defaults": dict(self.defaults), "accounts": {k: dict(v) for k, v in self.accounts.items()}}

    def clear(self) -> None:
        self.defaults, self.accounts, self._effective, self._default = {}, {}, {}, BASE
