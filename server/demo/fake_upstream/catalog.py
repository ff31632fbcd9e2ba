"""The fake backend's model catalog (`GET /codex/models`), in the shape the Codex CLI deserialises.
Owns which models exist, which plans may use them and the minimal client version of each."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import orjson

ALL_PLANS = ("free", "plus", "pro", "prolite", "team", "business", "enterprise", "edu")
PAID_PLANS = tuple(p for p in ALL_PLANS if p != "free")
BASE_INSTRUCTIONS = "You are Codex, a coding agent. (Served by the codex-lb fake upstream.)"
_LEVEL_TEXT = {
    "minimal": "Fastest responses with very little reasoning",
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth for everyday tasks",
    "high": "Greater reasoning depth for complex problems",
    "xhigh": "Extra high reasoning depth for complex problems",
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    slug: str
    display_name: str
    description: str
    minimal_client_version: str
    plans: tuple[str, ...]
    priority: int
    prefer_websockets: bool
    context_window: int = 272_000
    levels: tuple[str, ...] = ("low", "medium", "high", "xhigh")
    default_level: str = "medium"
    supported_in_api: bool = True
    visibility: str = "list"
    input_modalities: tuple[str, ...] = ("text", "image")

    def entry(self) -> dict:
        return {
            "slug": self.slug,
            "display_name": self.display_name,
            "description": self.description,
            "default_reasoning_level": self.default_level,
            "supported_reasoning_levels": [{"effort": e, "description": _LEVEL_TEXT[e]} for e in self.levels],
            "shell_type": "shell_command",
            "visibility": self.visibility,
            "supported_in_api": self.supported_in_api,
            "priority": self.priority,
            "upgrade": None,
            "base_instructions": BASE_INSTRUCTIONS,
            "supports_reasoning_summaries": True,
            "support_verbosity": True,
            "default_verbosity": "low",
            "apply_patch_tool_type": "freeform",
            "truncation_policy": {"mode": "tokens", "limit": 10000},
            "supports_parallel_tool_calls": True,
            "context_window": self.context_window,
            "max_context_window": self.context_window,
            "effective_context_window_percent": 95,
            "experimental_supported_tools": [],
            "input_modalities": list(self.input_modalities),
            "minimal_client_version": self.minimal_client_version,
            "prefer_websockets": self.prefer_websockets,
            "available_in_plans": list(self.plans),
            "service_tiers": [
                {"id": "priority", "name": "Fast", "description": "Faster responses, more usage"}
            ],
            "additional_speed_tiers": ["fast"],
        }


MODELS = (
    ModelSpec(
        "gpt-5.5",
        "GPT-5.5",
        "Latest frontier agentic coding model.",
        "0.130.0",
        PAID_PLANS,
        0,
        True,
        context_window=400_000,
    ),
    ModelSpec("gpt-5.4", "GPT-5.4", "Frontier agentic coding model.", "0.98.0", PAID_PLANS, 1, True),
    ModelSpec(
        "gpt-5.4-mini", "GPT-5.4 Mini", "Smaller, faster and cheaper GPT-5.4.", "0.98.0", ALL_PLANS, 2, True
    ),
    ModelSpec("gpt-5.3-codex", "GPT-5.3-Codex", "Codex-tuned GPT-5.3.", "0.90.0", PAID_PLANS, 3, False),
    ModelSpec(
        "gpt-5.3-codex-spark",
        "GPT-5.3-Codex-Spark",
        "Ultra-fast coding model (Pro only).",
        "0.100.0",
        ("pro",),
        4,
        False,
        context_window=128_000,
        input_modalities=("text",),
        supported_in_api=False,
    ),
    ModelSpec(
        "gpt-5.1-codex-mini",
        "GPT-5.1-Codex-Mini",
        "Cheaper, faster, less capable Codex model.",
        "0.50.0",
        ALL_PLANS,
        5,
        False,
        levels=("medium", "high"),
    ),
)
_BY_SLUG = {m.slug: m for m in MODELS}
# Older slugs the backend still serves to paid plans without listing them.
UNLISTED_SLUGS = frozenset(
    {
        "gpt-5",
        "gpt-5-codex",
        "gpt-5.1",
        "gpt-5.1-codex",
        "gpt-5.1-codex-max",
        "gpt-5.2",
        "gpt-5.2-codex",
    }
)


def parse_version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = []
    for piece in text.strip().lstrip("v").split("-")[0].split("."):
        if not piece.isdigit():
            return None
        parts.append(int(piece))
    return tuple(parts)


@lru_cache(maxsize=256)
def catalog_json(plan_type: str, client_version: str | None) -> bytes:
    """`{"models": [...]}` for a plan, leaving out models newer than the client (unparsable: no filter)."""
    version = parse_version(client_version)
    models = [
        m.entry()
        for m in MODELS
        if plan_type in m.plans and (version is None or version >= parse_version(m.minimal_client_version))
    ]
    return orjson.dumps({"models": models})


def serves(model: str, plan_type: str) -> bool:
    spec = _BY_SLUG.get(model)
    if spec is None:
        return model in UNLISTED_SLUGS and plan_type in PAID_PLANS
    return plan_type in spec.plans
