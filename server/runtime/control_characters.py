"""Control characters: what a log line escapes, and what a name people give things (an account's label, an
API key's name, an egress proxy's name or pool) may not hold, since it is shown in logs and terminals."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: each can end a log line early
# (a forged line after it), hide text (\r, NUL) or drive the terminal that shows it (ESC).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape(text: str) -> str:
    """The text on one line: each control character as its backslash escape (\\n, \\x00, \\u2028)."""
    return CONTROL.sub(_escaped, text)


def escape_within_lines(text: str) -> str:
    """Every control character but the newline escaped: for text whose lines are its own (a traceback)."""
    if not CONTROL.search(text):
        return text
    return "\n".join(escape(line) for line in text.split("\n"))


def has_control_characters(text: str) -> bool:
    return CONTROL.search(text) is not None
