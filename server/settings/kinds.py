"""The kinds of value a setting holds: each turns an environment string into its value (`parse`), checks
a JSON value sent to /api/settings (`check`) and says in a few words what it accepts (`allowed`)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.settings.database_url import normalise_database_url
from server.settings.errors import Invalid


@dataclass(frozen=True, slots=True)
class Text:
    what: str = "text"  # what the docs say it accepts
    strip: bool = False
    min_length: int = 0
    type = str

    def parse(self, text: str) -> str:
        value = text.strip() if self.strip else text
        if value and len(value) < self.min_length:  # empty: unset
            raise Invalid(f"must be at least {self.min_length} characters", value)
        return value

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        return self.parse(value)

    def allowed(self) -> str:
        return f"{self.what}, {self.min_length}+ characters" if self.min_length else self.what


@dataclass(frozen=True, slots=True)
class Number:
    """A whole number (`whole`) or a number of `unit` (seconds, days), between low and high."""

    low: float
    high: float
    unit: str = ""
    whole: bool = False

    @property
    def type(self) -> type:
        return int if self.whole else float

    def parse(self, text: str) -> float:
        try:
            number = int(text) if self.whole else float(text)
        except ValueError:
            raise Invalid(self._what(), text) from None
        return self._bounded(number)

    def check(self, value: Any) -> float:
        numeric = int if self.whole else int | float
        if isinstance(value, bool) or not isinstance(value, numeric) or not math.isfinite(value):
            raise Invalid("must be " + self._what().removeprefix("is not "))
        return self._bounded(self.type(value))

    def allowed(self) -> str:
        return f"{_number(self.low)}..{_number(self.high)}" + (f" {self.unit}" if self.unit else "")

    def _what(self) -> str:
        return "is not a whole number" if self.whole else f"is not a number of {self.unit}"

    def _bounded(self, number: float) -> float:
        if not self.low <= number <= self.high:
            raise Invalid(f"is out of range ({self.allowed()})", number)
        return number


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, slots=True)
class Flag:
    type = bool

    def parse(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise Invalid("must be true or false", text)

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false")
        return value

    def allowed(self) -> str:
        return "`true`, `false`"


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few words, in any case; the value is the word as written here."""

    choices: tuple[str, ...]
    type = str

    def parse(self, text: str) -> str:
        wanted = text.strip().lower()
        for choice in self.choices:
            if choice.lower() == wanted:
                return choice
        raise Invalid(f"must be one of {', '.join(self.choices)}", text)

    def check(self, value: Any) -> str:
        if value not in self.choices:
            raise Invalid(f"must be one of {', '.join(self.choices)}")
        return value

    def allowed(self) -> str:
        return ", ".join(f"`{choice}`" for choice in self.choices)


@dataclass(frozen=True, slots=True)
class Url:
    type = str

    def parse(self, text: str) -> str:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("must be an http:// or https:// URL", text)
        return text.rstrip("/")

    def allowed(self) -> str:
        return "http(s) URL"


@dataclass(frozen=True, slots=True)
class FilePath:
    type = Path

    def parse(self, text: str) -> Path:
        return Path(text).expanduser()

    def allowed(self) -> str:
        return "path"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    type = str

    def parse(self, text: str) -> str:
        return normalise_database_url(text)  # its errors name the variable and hide the password

    def allowed(self) -> str:
        return "`sqlite:///…`, `postgresql://…`"


_HOST_NAME = re.compile(r"\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


@dataclass(frozen=True, slots=True)
class CommaList:
    """Comma-separated items, each normalised (or refused) by `item`: origins, host names, networks."""

    item: str  # "origin", "host" or "network"
    type = tuple

    def parse(self, text: str) -> tuple[str, ...]:
        return tuple(_LIST_ITEMS[self.item](part.strip()) for part in text.split(",") if part.strip())

    def allowed(self) -> str:
        return f"comma-separated {self.item}s"


def _origin(text: str) -> str:
    origin = text.rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise Invalid("is not an origin like https://dash.example.com", item=origin)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _host(text: str) -> str:
    host = text.lower().rstrip(".")
    if host != "*" and not _HOST_NAME.fullmatch(host):
        raise Invalid(
            "is not a host name like codex.example.com, .example.com (a domain and its subdomains) "
            "or * (list names without a port)",
            item=host,
        )
    return host


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise Invalid("is not a network", item=text) from None


_LIST_ITEMS = {"origin": _origin, "host": _host, "network": _network}

Kind = Text | Number | Flag | Choice | Url | FilePath | DatabaseUrl | CommaList
