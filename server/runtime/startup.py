"""What an operator sees when codex-lb starts: mistyped or renamed CODEX_LB_* variables, where the data
lives, where the server listens, and the next step while the pool is empty. One plain line each, on stderr
(or a log record, with CODEX_LB_LOG_FORMAT=json)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from sanic import Sanic

from server.config import Settings
from server.runtime import logs, migrator
from server.settings.database_url import redact_database_url

_log = logging.getLogger(__name__)

EMPTY_POOL_HINT = (
    "codex-lb: the pool has no accounts yet: add one with `codex-lb accounts import ~/.codex/auth.json` "
    "or `codex-lb accounts login`, or try everything first against a fake backend with `scripts/demo`"
)


def say(line: str, out: TextIO | None = None) -> None:
    if logs.json_lines and out is None:
        _log.info(line.removeprefix("codex-lb: "))
        return
    print(line, file=out or sys.stderr, flush=True)


def unknown_variable_warnings(settings: Settings) -> list[str]:
    lines = []
    for name, closest in settings.unknown_variables:
        hint = f"; did you mean {closest}?" if closest else ""
        lines.append(f"codex-lb: warning: {name} is not a codex-lb setting and is ignored{hint}")
    return lines


def renamed_variable_warnings(settings: Settings) -> list[str]:
    return [
        f"codex-lb: warning: {old} is an old name: call it {new} (the new name wins when both are set)"
        for old, new in settings.renamed_variables
    ]


def warn_about_variables(settings: Settings, out: TextIO | None = None) -> None:
    for line in renamed_variable_warnings(settings) + unknown_variable_warnings(settings):
        say(line, out)


def where_data_lives(settings: Settings) -> str:
    if settings.is_sqlite:
        return (
            f"codex-lb: data dir {settings.data_dir} (database {settings.database_url[len('sqlite:///') :]})"
        )
    return f"codex-lb: data dir {settings.data_dir} (database {redact_database_url(settings.database_url)})"


def count_accounts(database_url: str) -> int:
    """Read-only and outside Pony: the main process never binds the ORM (workers do)."""
    conn = migrator.connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM account")
        return int(cur.fetchone()[0])
    finally:
        conn.close()


def announce(settings: Settings) -> None:
    """Main process, before the workers start: variables, data dir, and the empty-pool hint."""
    warn_about_variables(settings)
    say(where_data_lives(settings))
    if count_accounts(settings.database_url) == 0:
        say(EMPTY_POOL_HINT)


def install(app: Sanic) -> None:
    @app.main_process_ready
    async def announce_address(app: Sanic) -> None:
        host = app.state.host or "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        workers = app.state.workers
        note = " (every interface: reachable from other machines)" if host in ("0.0.0.0", "::") else ""
        say(
            f"codex-lb: listening on http://{shown}:{app.state.port} with {workers} "
            f"worker{'s' if workers != 1 else ''}{note}; stop it with Ctrl-C (or SIGTERM)"
        )
