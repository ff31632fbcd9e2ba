"""Whether a backend request gets served: the caller's account, its quota and the failure switches.
Owns the order of the checks and the booking of what a served turn consumed."""

from __future__ import annotations

import time

from aiohttp import web

from .accounts import Account
from .behaviour import Behaviour
from .catalog import serves
from .errors import injected_failure, model_not_supported, rate_limit_exceeded, usage_limit_reached
from .quota import Quota, consume, quota_of
from .state import FakeState
from .turns import Turn

STATE = web.AppKey("fake_upstream_state", FakeState)
ACCOUNT = web.RequestKey("account", Account)
BEHAVIOUR = web.RequestKey("behaviour", Behaviour)
LOG_ENTRY = web.RequestKey("log_entry", dict)


def authenticate(request: web.Request, deactivated_status: int = 403) -> tuple[Account, Behaviour]:
    """The caller's account; also tags the request so answers carry the account's quota headers."""
    account, behaviour = request.app[STATE].authenticate(request.headers, deactivated_status)
    request[ACCOUNT] = account
    request[BEHAVIOUR] = behaviour
    account.stats.routes[request.path] += 1
    entry = request.get(LOG_ENTRY)
    if entry is not None:
        entry["account"] = account.account_id
    return account, behaviour


def admit(account: Account, behaviour: Behaviour, model: str, now: float) -> Quota:
    """The account's quota when it may serve a turn of `model` now; else the backend's rejection."""
    quota = quota_of(account, behaviour, now)
    if behaviour.reject_unknown_models and not serves(model, quota.plan_type):
        raise model_not_supported(model)
    if quota.exhausted_window is not None:
        raise usage_limit_reached(quota)
    bucket = quota.bucket_of(model)
    if bucket is not None and bucket.exhausted:
        raise usage_limit_reached(quota, bucket)
    if behaviour.rate_limited:
        raise rate_limit_exceeded(model, behaviour.retry_after_s)
    if account.should_inject_failure(behaviour.failure_rate, behaviour.failure_limit):
        raise injected_failure(behaviour.failure_status, behaviour.failure_body)
    return quota


def settle(
    account: Account, behaviour: Behaviour, prompt_cache_key: object, turn: Turn, model: str | None = None
) -> None:
    """Book a planned turn: quota consumption, token counters, and the account's prompt cache."""
    if not turn.billable:
        return
    usage = turn.usage
    consume(account, behaviour, usage.total_tokens, time.time(), model)
    stats = account.stats
    stats.tokens_in += usage.input_tokens
    stats.tokens_out += usage.output_tokens
    stats.cached_tokens += usage.cached_tokens
    stats.reasoning_tokens += usage.reasoning_tokens
    if isinstance(prompt_cache_key, str):
        account.remember_prefix(prompt_cache_key, turn.context_tokens)
