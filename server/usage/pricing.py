"""Model prices (USD per 1M tokens) and the cost of one request's tokens.

The built-in table is OpenAI's published API prices (protocol.md §8); CODEX_LB_PRICING_OVERRIDES (or the
pricing_overrides run-time setting, which wins) replaces or adds models. A model the book does not know
has no price: its cost is None, never guessed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.config import PREFIX, ConfigError, Settings
from server.usage.tokens import TokenUsage

OVERRIDES_VARIABLE = PREFIX + "PRICING_OVERRIDES"
TOKENS_PER_PRICE_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens. Cached input is part of input_tokens; reasoning is part of output_tokens."""

    input: float
    cached_input: float
    output: float


def _family(models: Iterable[str], price: Price) -> dict[str, Price]:
    return dict.fromkeys(models, price)


BUILTIN_PRICES: Mapping[str, Price] = {
    "gpt-5.5": Price(5.00, 0.50, 30.00),
    "gpt-5.4": Price(2.50, 0.25, 15.00),
    "gpt-5.4-mini": Price(0.75, 0.075, 4.50),
    "gpt-5.4-nano": Price(0.20, 0.02, 1.25),
    **_family(("gpt-5.3-codex", "gpt-5.3", "gpt-5.2", "gpt-5.2-codex"), Price(1.75, 0.175, 14.00)),
    **_family(
        ("gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max", "gpt-5", "gpt-5-codex"), Price(1.25, 0.125, 10.00)
    ),
    "gpt-5.1-codex-mini": Price(0.25, 0.025, 2.00),
    # The pro models publish no cached-input price: cached tokens are billed as plain input.
    **_family(("gpt-5.5-pro", "gpt-5.4-pro"), Price(30.00, 30.00, 180.00)),
}

# OpenAI bills gpt-5.5 and gpt-5.4 at a higher long-context rate for the whole request once its input
# exceeds 272k tokens. We approximate that published tariff by doubling every rate (input, cached input
# and output) of such a request; one constant to adjust if the published multipliers differ.
LONG_CONTEXT_MODELS = frozenset({"gpt-5.5", "gpt-5.4"})
LONG_CONTEXT_INPUT_TOKENS = 272_000
LONG_CONTEXT_FACTOR = 2.0

# Dated snapshots (`gpt-5.4-2026-03-01`) are the same model at the same price as their base slug. Other
# suffixes (`-pro`, `-mini`, `-codex`) are different models, so nothing but a date is ever stripped.
_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


class PriceBook:
    """Prices for one worker, built once from the settings; lookups are a dict hit on the hot path."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = {model.strip().lower(): price for model, price in prices.items()}

    def install_overrides(self, overrides: Mapping[str, Price]) -> None:
        """The built-in table with `overrides` on top (a run-time settings change); one reference swap."""
        merged = {**BUILTIN_PRICES, **overrides}
        self._prices = {model.strip().lower(): price for model, price in merged.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceBook:
        return cls({**BUILTIN_PRICES, **parse_overrides(settings.pricing_overrides)})

    def price_for(self, model: str) -> Price | None:
        slug = self._slug(model)
        return None if slug is None else self._prices[slug]

    def cost_usd(self, model: str, usage: TokenUsage | None) -> float | None:
        """What the tokens would cost at API prices; None for an unknown model or a missing usage."""
        slug = self._slug(model)
        if slug is None or usage is None:
            return None
        price = self._prices[slug]
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        dollars_per_unit = (
            (usage.input_tokens - cached) * price.input
            + cached * price.cached_input
            + usage.output_tokens * price.output  # reasoning tokens are already inside output_tokens
        )
        if slug in LONG_CONTEXT_MODELS and usage.input_tokens > LONG_CONTEXT_INPUT_TOKENS:
            dollars_per_unit *= LONG_CONTEXT_FACTOR
        return dollars_per_unit / TOKENS_PER_PRICE_UNIT

    def _slug(self, model: str) -> str | None:
        if not isinstance(model, str):
            return None
        slug = model.strip().lower()
        if slug in self._prices:
            return slug
        dated = _DATED_SNAPSHOT.match(slug)
        if dated and dated["base"] in self._prices:
            return dated["base"]
        return None


def parse_overrides(raw: str) -> dict[str, Price]:
    """`{"model": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}`; cached_input defaults to input."""
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{OVERRIDES_VARIABLE} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{OVERRIDES_VARIABLE} must be a JSON object of model -> price")
    return price_table(document, OVERRIDES_VARIABLE)


def price_table(document: dict, source: str) -> dict[str, Price]:
    """Model -> Price from the JSON shape above; ConfigError messages start with `source`."""
    return {_model_name(model, source): _price(model, spec, source) for model, spec in document.items()}


def _model_name(model: str, source: str) -> str:
    if not model.strip():
        raise ConfigError(f"{source} has an empty model name")
    return model


def _price(model: str, spec: object, source: str) -> Price:
    where = f"{source}[{model!r}]"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be an object with input, cached_input and output")
    unknown = set(spec) - {"input", "cached_input", "output"}
    if unknown:
        raise ConfigError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    input_rate = _rate(where, spec, "input")
    output_rate = _rate(where, spec, "output")
    cached_rate = _rate(where, spec, "cached_input") if "cached_input" in spec else input_rate
    return Price(input_rate, cached_rate, output_rate)


def _rate(where: str, spec: dict, name: str) -> float:
    if name not in spec:
        raise ConfigError(f"{where} needs {name!r} (USD per 1M tokens)")
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}.{name}={value!r} must be a non-negative number (USD per 1M tokens)")
    return float(value)
