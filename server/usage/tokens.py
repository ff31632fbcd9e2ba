"""Token counts of one response, read from the `usage` object of a terminal Responses event.

Upstream usage is trusted for billing but not for shape: anything missing or malformed counts as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    cached_input_tokens: int = 0  # part of input_tokens, billed at the cached rate
    output_tokens: int = 0
    reasoning_tokens: int = 0  # part of output_tokens, billed as output
    total_tokens: int = 0

    @classmethod
    def from_response(cls, response: Any) -> TokenUsage | None:
        """Usage of a terminal event's `response` object; None when it carries no usage object."""
        usage = response.get("usage") if isinstance(response, dict) else None
        if not isinstance(usage, dict):
            return None
        input_tokens = _count(usage.get("input_tokens"))
        output_tokens = _count(usage.get("output_tokens"))
        total = usage.get("total_tokens")
        return cls(
            input_tokens=input_tokens,
            cached_input_tokens=_count(_detail(usage, "input_tokens_details", "cached_tokens")),
            output_tokens=output_tokens,
            reasoning_tokens=_count(_detail(usage, "output_tokens_details", "reasoning_tokens")),
            # A usage object without a usable total still has one: input plus output, by definition.
            total_tokens=_count(total) if _is_count(total) else input_tokens + output_tokens,
        )

    def __add__(self, other: object) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )


def _detail(usage: dict, section: str, name: str) -> Any:
    details = usage.get(section)
    return details.get(name) if isinstance(details, dict) else None


def _is_count(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and math.isfinite(value) and value >= 0


def _count(value: Any) -> int:
    return int(value) if _is_count(value) else 0
