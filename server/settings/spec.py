"""One setting's spec: its variable, kind, default, help, whether it changes at run time, and the names
it had before. The table of them is in server/settings/table.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from server.settings.errors import ConfigError, Invalid
from server.settings.kinds import Kind

PREFIX = "CODEX_LB_"

# A default that depends on settings read before it (the data dir, whether we run in the image): it is
# given the values so far, by attribute name, and answers the environment text to parse.
Computed = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str  # the variable without CODEX_LB_
    kind: Kind
    default: str | Computed
    help: str
    field: str = ""  # the Settings attribute when it is not the name in lower case
    runtime: bool = False  # also a run-time setting of /api/settings, the environment giving its default
    old_names: tuple[str, ...] = ()  # earlier names (without CODEX_LB_) that still work, with a warning
    secret: bool = False  # never shown: not in an error, the repr or the docs' defaults
    shown_default: str = ""  # the docs' words for a computed (or unset) default

    @property
    def variable(self) -> str:
        return PREFIX + self.name

    @property
    def attribute(self) -> str:
        return self.field or self.name.lower()

    def default_text(self, so_far: Mapping[str, Any]) -> str:
        return self.default(so_far) if callable(self.default) else self.default

    def parse(self, text: str, variable: str) -> Any:
        """The value of `text`, given as `variable` (this name or an old one, named in the error)."""
        try:
            return self.kind.parse(text)
        except Invalid as error:
            raise ConfigError(refusal(variable, error, self.secret)) from None

    def check(self, value: Any) -> Any:
        """A run-time value (JSON) of this setting; Invalid says why not."""
        return self.kind.check(value)


def refusal(variable: str, error: Invalid, secret: bool = False) -> str:
    if error.item is not None:
        return f"{variable}: {error.item!r} {error.reason}"
    if secret or error.value is None:
        return f"{variable} {error.reason}"
    return f"{variable}={error.value!r} {error.reason}"
