"""codex-lb: a load balancer and proxy that pools ChatGPT (Codex) accounts behind one endpoint.

`sanic server.app` loads `app` from here; it is built on first access, so importing a submodule of
`server` has no side effects.
"""

from __future__ import annotations

import sys


def __getattr__(name: str):
    if name != "app":
        raise AttributeError(f"module 'server' has no attribute {name!r}")
    try:
        instance = _build_app()
    except AttributeError as exc:
        # getattr() callers (Sanic's loader) would mistake this for "no app here" and hide the cause.
        raise RuntimeError(f"codex-lb failed to start: {exc}") from exc
    except KeyboardInterrupt:
        # Sanic stops a worker with SIGINT; one still importing the app (a stop moments after start,
        # or a worker restarting) would print a traceback for an orderly stop. Leave quietly instead.
        from server.config import is_sanic_worker

        if is_sanic_worker():
            raise SystemExit(0) from None
        raise
    globals()["app"] = instance
    return instance


def _build_app():
    from server.accounts.keycheck import WrongEncryptionKey, verify_encryption_key
    from server.app import create_app
    from server.config import ConfigError, Settings, is_sanic_worker
    from server.runtime import migrator, startup

    try:
        settings = Settings.load()
        instance = create_app(settings)
    except ConfigError as exc:
        # One clear line, not a traceback: the operator has a setting to fix.
        print(f"codex-lb: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not is_sanic_worker():
        # Migrate in the main process before any worker starts: a refusal is one line, not N crashes.
        try:
            migrator.migrate(settings.database_url)
        except (migrator.SchemaTooNewError, *migrator.CONNECT_ERRORS) as exc:
            print(f"codex-lb: cannot start: {' '.join(str(exc).split())}", file=sys.stderr)
            raise SystemExit(2) from None
        try:
            verify_encryption_key(settings)
        except WrongEncryptionKey as exc:
            print(f"codex-lb: cannot start: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        startup.announce(settings)
    return instance
