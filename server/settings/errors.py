"""What a refused setting raises: ConfigError, naming the variable, for the operator; Invalid, the reason
alone, for whoever knows the name (the environment's variable or the run-time setting)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has a value codex-lb cannot use; the message names the variable."""


class Invalid(ValueError):
    """A value a kind refuses: why, and the value (or the one list item) to show beside the name."""

    def __init__(self, reason: str, value: object = None, item: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value
        self.item = item
