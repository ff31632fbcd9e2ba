"""Fake accounts at run time: identity, quota windows, prompt cache, token revocation marks and counters.
Owns the registry that auto-registers any account whose token this fake (or mint_auth_json) signed."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .tokens import Identity

_PROMPT_CACHE_LIMIT = 50_000


@dataclass(slots=True)
class Window:
    """Tokens consumed in one rolling quota window; the length comes from the account's behaviour."""

    started_at: float
    used_tokens: int = 0

    def roll(self, minutes: int, now: float) -> None:
        length = minutes * 60
        if length > 0 and now >= self.started_at + length:
            self.started_at += ((now - self.started_at) // length) * length
            self.used_tokens = 0


@dataclass(slots=True)
class AccountStats:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    transports: Counter = field(default_factory=Counter)
    routes: Counter = field(default_factory=Counter)  # every authenticated backend call, by path
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    refreshes: int = 0
    refresh_attempts: int = 0
    refresh_reused: int = 0
    logins: int = 0
    ws_connections: int = 0
    current_streams: int = 0
    max_concurrent_streams: int = 0
    injected_failures: int = 0

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transports": dict(self.transports),
            "routes": dict(self.routes),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "refreshes": self.refreshes,
            "refresh_attempts": self.refresh_attempts,
            "refresh_reused": self.refresh_reused,
            "logins": self.logins,
            "ws_connections": self.ws_connections,
            "current_streams": self.current_streams,
            "max_concurrent_streams": self.max_concurrent_streams,
            "injected_failures": self.injected_failures,
        }


class Account:
    __slots__ = (
        "identity",
        "primary",
        "secondary",
        "other",
        "prompt_cache",
        "stats",
        "failure_counter",
        "tokens_bad_before_ns",
        "tokens_bad_code",
    )

    def __init__(self, identity: Identity, now: float) -> None:
        self.identity = identity
        self.primary = Window(now)
        self.secondary = Window(now)
        self.other = Window(now)  # the per-model bucket's window
        self.prompt_cache: dict[str, int] = {}
        self.stats = AccountStats()
        self.failure_counter = 0
        self.tokens_bad_before_ns = 0
        self.tokens_bad_code = "token_expired"

    @property
    def account_id(self) -> str:
        return self.identity.account_id

    def cached_prefix(self, prompt_cache_key: str | None) -> int:
        return self.prompt_cache.get(prompt_cache_key, 0) if prompt_cache_key else 0

    def remember_prefix(self, prompt_cache_key: str | None, tokens: int) -> None:
        if not prompt_cache_key:
            return
        if len(self.prompt_cache) >= _PROMPT_CACHE_LIMIT:
            self.prompt_cache.clear()
        self.prompt_cache[prompt_cache_key] = tokens

    def expire_tokens(self, code: str) -> None:
        """Every access token issued until now answers 401 `code`; tokens refreshed later work."""
        self.tokens_bad_before_ns = time.time_ns()
        self.tokens_bad_code = code

    def stream_started(self) -> None:
        stats = self.stats
        stats.current_streams += 1
        if stats.current_streams > stats.max_concurrent_streams:
            stats.max_concurrent_streams = stats.current_streams

    def stream_ended(self) -> None:
        self.stats.current_streams -= 1

    def should_inject_failure(self, rate: float, limit: int | None) -> bool:
        """Deterministic failure draw: exactly floor(n * rate) of the first n requests fail."""
        if rate <= 0 or (limit is not None and self.stats.injected_failures >= limit):
            return False
        n = self.failure_counter
        self.failure_counter = n + 1
        if int((n + 1) * rate) > int(n * rate):
            self.stats.injected_failures += 1
            return True
        return False


class AccountRegistry:
    def __init__(self) -> None:
        self.by_id: dict[str, Account] = {}

    def register(self, identity: Identity) -> Account:
        account = self.by_id.get(identity.account_id)
        if account is None:
            account = self.by_id[identity.account_id] = Account(identity, time.time())
        elif account.identity != identity:
            account.identity = identity
        return account

    def get(self, account_id: str) -> Account | None:
        return self.by_id.get(account_id)

    def find_by_email(self, email: str) -> Account | None:
        return next((a for a in self.by_id.values() if a.identity.email == email), None)

    def clear(self) -> None:
        self.by_id.clear()
