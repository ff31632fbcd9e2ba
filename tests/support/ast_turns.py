"""Python 3.11's `ast` counts its recursion depth in interpreter-wide state (CPython gh-106905): when two
threads turn source into AST objects at once, one of them can fail with "SystemError: AST constructor
recursion depth mismatch". This process does exactly that: its main thread builds a Sanic app per test
(the router compiles its lookup through `ast.parse`, Sanic parses handler sources) while the fake
upstream's thread may log a traceback, whose carets Python 3.11 finds with `ast.parse`. CI failed a
test's set-up so twice. One lock makes every `ast.parse` of the process take turns."""

from __future__ import annotations

import ast
import sys
import threading

_original_parse = ast.parse
_turns = threading.RLock()  # re-entrant: a parse may trigger a finaliser that logs a traceback


def _parse_in_turn(*args, **kwargs):
    with _turns:
        return _original_parse(*args, **kwargs)


def install() -> None:
    """Route `ast.parse`, and every module's `from ast import parse` made before now, through the lock."""
    ast.parse = _parse_in_turn
    for module in list(sys.modules.values()):
        if getattr(module, "parse", None) is _original_parse:
            module.parse = _parse_in_turn
