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
    # Numbers are handed out per feature branch ahead of merging, so a gap may exist for a while;
    # duplicates never may.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise RuntimeError(f"migrations must have distinct numbers from 1 up, found {versions}")
    return found


def latest_version() -> int:
    found = discover()
    return found[-1].version if found else 0
