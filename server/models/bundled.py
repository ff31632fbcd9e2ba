"""The catalog served before the first successful sync (a fresh install, or an upstream that is down).
Entries carry every field the Codex CLI requires, so it never discards the catalog; plans are unknown."""

from __future__ import annotations

from server.models.catalog import Catalog, ModelRow

_BASE_INSTRUCTIONS = (
    "You are Codex, a coding agent based on GPT-5. You and the user share the same workspace."
)
_LEVELS = {
    "low": "Fast responses with lighter reasoning",
    "medium": "Balances speed and reasoning depth for everyday tasks",
    "high": "Greater reasoning depth for complex problems",
    "xhigh": "Extra high reasoning depth for complex problems",
}


def _entry(
    slug: str,
    display_name: str,
    description: str,
    priority: int,
    minimal_client_version: str,
    *,
    context_window: int = 272_000,
    levels: tuple[str, ...] = ("low", "medium", "high", "xhigh"),
    supported_in_api: bool = True,
    input_modalities: tuple[str, ...] = ("text", "image"),
) -> dict:
    return {
        "slug": slug,
        "display_name": display_name,
        "description": description,
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [{"effort": e, "description": _LEVELS[e]} for e in levels],
        "shell_type": "shell_command",
        "visibility": "list",
        "supported_in_api": supported_in_api,
        "priority": priority,
        "base_instructions": _BASE_INSTRUCTIONS,
        "supports_reasoning_summaries": True,
        "support_verbosity": True,
        "default_verbosity": "low",
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "context_window": context_window,
        "experimental_supported_tools": [],
        "input_modalities": list(input_modalities),
        "minimal_client_version": minimal_client_version,
    }


ENTRIES = (
    _entry(
        "gpt-5.5", "GPT-5.5", "Latest frontier agentic coding model.", 0, "0.130.0", context_window=400_000
    ),
    _entry("gpt-5.4", "GPT-5.4", "Frontier agentic coding model.", 1, "0.98.0"),
    _entry("gpt-5.4-mini", "GPT-5.4 Mini", "Smaller, faster and cheaper GPT-5.4.", 2, "0.98.0"),
    _entry("gpt-5.3-codex", "GPT-5.3-Codex", "Codex-tuned GPT-5.3.", 3, "0.90.0"),
    _entry(
        "gpt-5.3-codex-spark",
        "GPT-5.3-Codex-Spark",
        "Ultra-fast coding model (Pro only).",
        4,
        "0.100.0",
        context_window=128_000,
        supported_in_api=False,
        input_modalities=("text",),
    ),
    _entry(
        "gpt-5.1-codex-mini",
        "GPT-5.1-Codex-Mini",
        "Cheaper, faster, less capable Codex model.",
        5,
        "0.50.0",
        levels=("medium", "high"),
    ),
)


def bundled_catalog() -> Catalog:
    return Catalog(tuple(ModelRow(e["slug"], e, ()) for e in ENTRIES), source="bundled")
