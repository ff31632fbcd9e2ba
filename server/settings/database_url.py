"""Database URLs: the spellings people copy from other projects' docs made plain, and the password kept
out of every message."""

from __future__ import annotations

from pathlib import Path

from server.settings.errors import ConfigError

VARIABLE = "CODEX_LB_DATABASE_URL"

# SQLAlchemy-style spellings users copy from other projects' docs, mapped to the plain scheme.
_SCHEME_ALIASES = {
    "sqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+asyncpg": "postgresql",
    "postgresql+psycopg": "postgresql",
    "postgresql+psycopg2": "postgresql",
    "postgresql+pg8000": "postgresql",
}


def normalise_database_url(url: str) -> str:
    """Return `sqlite:///abs/path` or `postgresql://…`, accepting the common driver-suffixed spellings."""
    scheme, sep, rest = url.partition("://")
    canonical = _SCHEME_ALIASES.get(scheme.lower()) if sep else None
    if canonical is None:
        raise ConfigError(
            f"{VARIABLE}={redact_database_url(url)!r} is not a database URL "
            "(expected sqlite:///path or postgresql://user@host/db)"
        )
    if canonical == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"{VARIABLE} must name a file, like sqlite:////var/lib/codex-lb/store.db")
        path = Path(rest[1:].split("?", 1)[0]).expanduser()
        return f"sqlite:///{path if path.is_absolute() else path.resolve()}"
    if not rest or rest.startswith("/"):
        raise ConfigError(f"{VARIABLE}={redact_database_url(url)!r} has no host")
    return f"postgresql://{rest}"


def sqlite_path(database_url: str) -> Path:
    return Path(database_url[len("sqlite:///") :])


def redact_database_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
