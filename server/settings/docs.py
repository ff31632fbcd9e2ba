"""docs/configuration.md's tables, written from the settings table: `scripts/config-docs` rewrites the
parts between the markers (the prose around them is the page's own); `--check` only says if they drifted.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from server.settings.spec import PREFIX, SettingSpec
from server.settings.table import GROUPS, RUNTIME, SPECS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_PART = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end of generated: \2 -->)", re.DOTALL)


def settings_tables() -> str:
    lines = []
    for title, specs in GROUPS:
        lines += [f"### {title}", "", "| variable | default | accepts | meaning |", "|---|---|---|---|"]
        lines += [f"| `{s.variable}` | {_default(s)} | {s.kind.allowed()} | {_meaning(s)} |" for s in specs]
        lines.append("")
    return "\n".join(lines)


def runtime_table() -> str:
    lines = ["| setting | environment default | accepts |", "|---|---|---|"]
    lines += [f"| `{s.attribute}` | `{s.variable}` ({_default(s)}) | {s.kind.allowed()} |" for s in RUNTIME]
    return "\n".join(lines) + "\n"


def renamed_table() -> str:
    lines = ["| old name | new name |", "|---|---|"]
    lines += [f"| `{PREFIX}{old}` | `{s.variable}` |" for s in SPECS for old in s.old_names]
    return "\n".join(lines) + "\n"


PARTS = {"settings": settings_tables, "runtime": runtime_table, "renamed": renamed_table}


def _default(spec: SettingSpec) -> str:
    if spec.shown_default:
        return spec.shown_default
    return f"`{spec.default}`" if spec.default and not spec.secret else "—"


def _meaning(spec: SettingSpec) -> str:
    notes = [f"run-time setting `{spec.attribute}`"] if spec.runtime else []
    notes += [f"formerly `{PREFIX}{old}`" for old in spec.old_names]
    return spec.help + (f" ({'; '.join(notes)})" if notes else "")


def render(page: str) -> str:
    """The page with each generated part written afresh from the table."""
    return _PART.sub(lambda m: m.group(1) + PARTS[m.group(2)]() + m.group(3), page)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Write docs/configuration.md's tables from the settings table."
    )
    parser.add_argument("--check", action="store_true", help="only say whether the page is up to date")
    args = parser.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    fresh = render(page)
    if args.check:
        if fresh != page:
            print(f"{PAGE} is out of date: run scripts/config-docs", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
