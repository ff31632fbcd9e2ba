"""Admission of one request on an API key: model rules, then a reservation against every limit rule
that applies, settled to the real usage when the request ends.

Estimates: input tokens = request body bytes / 4 (an over-estimate for JSON), plus
`CODEX_LB_KEY_OUTPUT_ALLOWANCE_TOKENS` of output; cost = those tokens at the model's price; requests = 1.
A request holds its estimate capped at what the rule has left, so small budgets serve requests whose
estimate exceeds them; one that then uses more than it holds is the documented overshoot.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from server.errors import DatabaseUnavailable, ProxyError, is_database_unavailable
from server.keys.ledger import Hold, Refusal
from server.keys.store import KeyRecord, LimitRule
from server.keys.windows import bounds, iso
from server.usage.tokens import TokenUsage

log = logging.getLogger(__name__)
BYTES_PER_TOKEN = 4
HELD_RETRY_AFTER_S = 1


@dataclass(frozen=True, slots=True)
class Admission:
    key: KeyRecord
    request_id: str
    rules: tuple[LimitRule, ...]
    holds: tuple[Hold, ...]


def check_model(key: KeyRecord, model: str, effort: str) -> None:
    """403 when the key may not use this model or reasoning effort (no effort sent is allowed)."""
    if key.allowed_models is not None and model.lower() not in key.allowed_models:
        raise ProxyError(
            f"This API key may not use the model '{model}'; it may use: "
            f"{', '.join(sorted(key.allowed_models))}.",
            status=403,
            type="invalid_request_error",
            code="model_not_allowed",
            param="model",
        )
    if effort and key.allowed_efforts is not None and effort.lower() not in key.allowed_efforts:
        raise ProxyError(
            f"This API key may not use reasoning effort '{effort}'; it may use: "
            f"{', '.join(sorted(key.allowed_efforts))}.",
            status=403,
            type="invalid_request_error",
            code="reasoning_effort_not_allowed",
            param="reasoning.effort",
        )


async def admit(ctx, key: KeyRecord | None, request_id: str, model: str, effort: str, body_size: int):
    """None without a key; else the Admission, having reserved against every applicable rule."""
    if key is None:
        return None
    check_model(key, model, effort)
    rules = tuple(rule for rule in key.limits if rule.applies_to(model))
    if not rules:
        return Admission(key, request_id, (), ())  # keys without limits never touch the database
    now = time.time()
    input_tokens = math.ceil(body_size / BYTES_PER_TOKEN)
    allowance = ctx.settings.key_output_allowance_tokens
    estimate = TokenUsage(
        input_tokens=input_tokens, output_tokens=allowance, total_tokens=input_tokens + allowance
    )
    holds = []
    for rule in rules:
        start, end = bounds(rule.window, now)
        amount = _amount(rule.quantity, estimate, ctx.prices.cost_usd(model, estimate))
        holds.append(Hold(rule.id, start, end, min(amount, rule.max_value), rule.max_value))
    try:
        refusal = await ctx.ledger.reserve(request_id, holds)
    except Exception as exc:
        if is_database_unavailable(exc):  # e.g. SQLite's write lock held past its timeout
            log.warning("api key reservation failed request_id=%s error=%s", request_id, exc)
            raise DatabaseUnavailable() from None
        raise
    if not isinstance(refusal, Refusal):
        return Admission(key, request_id, rules, tuple(refusal))  # the holds as granted
    rule, hold = rules[refusal.index], holds[refusal.index]
    log.info(
        "api key limit refused request_id=%s key=%d rule=%d used=%.6g reserved=%.6g asked=%.6g max=%.6g",
        request_id,
        key.id,
        rule.id,
        refusal.used,
        refusal.reserved,
        hold.amount,
        rule.max_value,
    )
    if refusal.reserved > 0 and refusal.used < rule.max_value:
        raise held_by_running_requests(rule)
    raise limit_reached(rule, hold.window_end)


def settle(ctx, admission: Admission | None, usage: TokenUsage | None, cost_usd: float | None, served: bool):
    """Count what the request really used (in the background) and release its reservation."""
    if admission is None or not admission.holds:
        return
    actuals = [
        _amount(rule.quantity, usage or TokenUsage(), cost_usd, 1.0 if served else 0.0)
        for rule in admission.rules
    ]
    ctx.ledger.settle(admission.request_id, list(admission.holds), actuals)


def _amount(quantity: str, usage: TokenUsage, cost_usd: float | None, requests: float = 1.0) -> float:
    if quantity == "tokens":
        return float(usage.total_tokens)
    if quantity == "cost_usd":
        return float(cost_usd or 0.0)
    return requests


def held_by_running_requests(rule: LimitRule) -> ProxyError:
    """The budget is not spent, but requests still running hold the rest of it until they finish."""
    return ProxyError(
        f"This API key's limit of {rule.describe()} is held by its requests still running; retry in a "
        "moment. This is a codex-lb proxy limit on the key, not an OpenAI limit.",
        status=429,
        type="rate_limit_error",
        code="api_key_limit_reached",
        headers={"retry-after": str(HELD_RETRY_AFTER_S)},
        extra={"limit": _rule_json(rule), "held_by_running_requests": True},
    )


def _rule_json(rule: LimitRule) -> dict:
    return {
        "quantity": rule.quantity,
        "window": rule.window,
        "max": rule.max_value,
        "model": rule.model or None,
    }


def limit_reached(rule: LimitRule, resets_at: float) -> ProxyError:
    wait = max(1, math.ceil(resets_at - time.time()))
    return ProxyError(
        f"This API key has reached its limit of {rule.describe()} (calendar {rule.window}, UTC); "
        f"it resets at {iso(resets_at)}. This is a codex-lb proxy limit on the key, not an OpenAI limit.",
        status=429,
        type="rate_limit_error",
        code="api_key_limit_reached",
        headers={"retry-after": str(wait)},
        extra={
            "resets_at": int(resets_at),
            "limit": _rule_json(rule),
        },
    )
