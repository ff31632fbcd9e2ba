"""One immutable snapshot of the model catalog, held per worker and swapped whole on reload.
Owns the lookups the hot path makes (is the model known, which plans serve it) and the client shapes."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.errors import ProxyError

# Older slugs the backend still serves to paid plans without listing them in its catalog.
UNLISTED_SLUGS = frozenset(
    {"gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max", "gpt-5.2", "gpt-5.2-codex"}
)
REASONING_LEVELS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra"})
OWNER = "codex-lb"


@dataclass(frozen=True, slots=True)
class ModelRow:
    """A catalog entry as stored: the upstream entry verbatim and the plans seen serving it."""

    slug: str
    entry: dict
    plans: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    rows: tuple[ModelRow, ...]
    source: str  # "synced" or "bundled"
    synced_at: float = 0.0
    _by_slug: dict[str, ModelRow] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_slug", {row.slug: row for row in self.rows})

    def knows(self, model: str) -> bool:
        return model in self._by_slug or model in UNLISTED_SLUGS

    def plans_for(self, model: str) -> frozenset[str] | None:
        """The plans whose accounts may serve the model; None when any account may try."""
        row = self._by_slug.get(model)
        if row is None or not row.plans:
            return None
        return frozenset(row.plans)

    def prefers_websockets(self, model: str) -> bool | None:
        """The catalog's `prefer_websockets` for the model; None when the catalog does not say."""
        row = self._by_slug.get(model)
        value = row.entry.get("prefer_websockets") if row is not None else None
        return value if isinstance(value, bool) else None

    def require(self, model: str) -> frozenset[str] | None:
        """The plans for a known model; OpenAI's model_not_found 404 for an unknown one."""
        if not self.knows(model):
            raise ProxyError(
                f"The model `{model}` does not exist or you do not have access to it.",
                status=404,
                type="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        return self.plans_for(model)

    def codex_models(self, client_version: str | None) -> list[dict]:
        """The backend's own entries, leaving out models newer than the client (unparsable: no filter)."""
        version = parse_version(client_version)
        out = []
        for row in self.rows:
            minimal = parse_version(row.entry.get("minimal_client_version"))
            if version is not None and minimal is not None and version < minimal:
                continue
            out.append(_codex_entry(row.entry))
        return out

    def openai_models(self) -> list[dict]:
        return [
            openai_model(row.entry)
            for row in self.rows
            if row.entry.get("supported_in_api", True) and row.entry.get("visibility") != "hide"
        ]

    def openai_model(self, model: str) -> dict | None:
        row = self._by_slug.get(model)
        return openai_model(row.entry) if row is not None else None


def _codex_entry(entry: dict) -> dict:
    levels = entry.get("supported_reasoning_levels")
    if not isinstance(levels, list):
        return entry
    kept = [lv for lv in levels if isinstance(lv, dict) and lv.get("effort") in REASONING_LEVELS]
    if len(kept) == len(levels):
        return entry
    return {**entry, "supported_reasoning_levels": kept}


def openai_model(entry: dict) -> dict:
    """OpenAI's model object, with the metadata tools like OpenCode and LiteLLM read."""
    context = entry.get("context_window")
    modalities = entry.get("input_modalities") or ["text"]
    levels = [
        lv.get("effort") for lv in entry.get("supported_reasoning_levels") or [] if isinstance(lv, dict)
    ]
    return {
        "id": entry["slug"],
        "object": "model",
        "created": 0,
        "owned_by": OWNER,
        "context_length": context,
        "metadata": {
            "display_name": entry.get("display_name", entry["slug"]),
            "description": entry.get("description", ""),
            "context_window": context,
            "input_modalities": modalities,
            "supported_reasoning_levels": levels,
            "default_reasoning_level": entry.get("default_reasoning_level"),
            "supports_reasoning_summaries": entry.get("supports_reasoning_summaries", False),
            "supports_parallel_tool_calls": entry.get("supports_parallel_tool_calls", False),
            "minimal_client_version": entry.get("minimal_client_version"),
        },
    }


MAX_VERSION_CHARS = 64


def parse_version(text) -> tuple[int, ...] | None:
    # Real versions are short ("0.169.0"); anything else is unparsable, never an int() of 4,300 digits
    # (Python refuses those) or of a non-ASCII digit such as "²".
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_VERSION_CHARS:
        return None
    parts = []
    for piece in text.strip().lstrip("v").split("-")[0].split("."):
        if not (piece.isascii() and piece.isdigit()) or len(piece) > 9:
            return None
        parts.append(int(piece))
    return tuple(parts)
