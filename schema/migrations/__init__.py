"""Numbered migration steps, discovered from the modules `vNNNN_<name>.py` in this package.

Each module has `def statements(dialect: str) -> list[str]` (dialect is "sqlite" or "postgresql").
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

_MODULE_NAME = re.compile(r"^v(\d{4})_(\w+)$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[str], list[str]]


def discover() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE_NAME.match(info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(Migration(int(match.group(1)), match.group(2), module.statements))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def latest_version() -> int:
    return len(discover())
