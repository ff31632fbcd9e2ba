"""Settings for tests: a data dir of the test's own, a database URL, and CODEX_LB_* overrides by name.
Owns the one way a test builds `Settings`, as the server would from its environment."""

from __future__ import annotations

from pathlib import Path

from server.config import Settings


def make_settings(data_dir: Path, database_url: str | None = None, **environ: str) -> Settings:
    env = {"CODEX_LB_DATA_DIR": str(data_dir)}
    if database_url:
        env["CODEX_LB_DATABASE_URL"] = database_url
    env.update({f"CODEX_LB_{k.upper()}": v for k, v in environ.items()})
    return Settings.load(env, cwd=data_dir)
