"""Settings: the one place that reads the environment.

Values come from CODEX_LB_* environment variables, then `.env.local` in the working directory, then
defaults; what each setting is, accepts and defaults to is server/settings/table.py. `Settings.load()`
validates everything and raises ConfigError naming the bad variable.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from server.file_modes import make_owner_only
from server.settings.errors import ConfigError
from server.settings.spec import PREFIX, SettingSpec
from server.settings.table import SPECS

ENV_FILE = ".env.local"

# CODEX_LB_* names that are not server settings but are ours all the same: the key clients export
# (README's Codex CLI and OpenCode set-ups) and the test suite's database.
NOT_SETTINGS = frozenset({PREFIX + "API_KEY", PREFIX + "TEST_DATABASE_URL"})


@dataclass(frozen=True, slots=True)
class Settings:
    """One attribute per spec of the table (tests/test_settings_table.py keeps them the same), in its
    order; what each means is its spec's help."""

    in_container: bool
    data_dir: Path
    database_url: str
    encryption_key_file: Path
    host: str
    port: int
    workers: int
    db_threads: int
    shutdown_drain_s: float
    upstream_base_url: str
    auth_base_url: str
    egress_probe_url: str
    oauth_callback_host: str
    oauth_callback_port: int
    usage_poll_interval_s: float
    models_sync_interval_s: int
    token_refresh_ahead_s: float
    token_refresh_check_s: float
    routing_strategy: str
    sticky_sessions: bool
    prefer_earlier_reset: str
    session_placement: str
    account_inflight_cap: int
    max_accounts: int
    max_attempts: int
    pool_rate_limits: str
    hide_upstream_quota: bool
    request_max_bytes: int
    request_body_timeout_s: float
    body_bytes_in_flight: int
    transcription_max_bytes: int
    upstream_first_byte_timeout_s: float
    upstream_failover_timeout_s: float
    stream_keepalive_s: float
    key_output_allowance_tokens: int
    api_key_auth_enabled: bool
    pricing_overrides: str
    request_log_retention_days: float
    usage_rollup_interval_s: float
    upstream_stream_transport: str
    upstream_websocket_trust_env: bool
    upstream_ws_per_account: int
    upstream_ws_total: int
    websocket_idle_timeout_seconds: int
    websocket_ping_s: float
    websocket_queued_bytes: int
    websocket_queued_bytes_per_worker: int
    dashboard_auth_mode: str
    dashboard_auth_proxy_header: str
    dashboard_bootstrap_token: str = field(repr=False)
    dashboard_session_idle_s: float
    dashboard_session_max_s: float
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    firewall_trusted_proxy_cidrs: tuple[str, ...]
    firewall_trust_proxy_headers: bool
    firewall_forwarded_header: str
    log_level: str
    log_format: str
    metrics_token: str = field(repr=False)
    metrics_port: int
    # What start-up warns about: CODEX_LB_* variables that are no setting (a typo?), each with the
    # closest known name, and settings given by an old name, each with its new one.
    unknown_variables: tuple[tuple[str, str | None], ...] = field(default=(), repr=False, compare=False)
    renamed_variables: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    # Raw values of the CODEX_LB_* variables that are no setting; never logged.
    extra: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, cwd: Path | None = None) -> Settings:
        environ = dict(os.environ) if environ is None else environ
        raw = _read_env_file((cwd or Path.cwd()) / ENV_FILE)
        # Only the process environment says we run in the image: a .env.local carried from a container
        # set-up to a laptop must not move the data dir or open the listener to the network.
        raw.pop(PREFIX + "IN_CONTAINER", None)
        raw.update({k: v for k, v in environ.items() if k.startswith(PREFIX)})
        return _build(raw)

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")


def export_overrides(values: dict[str, str]) -> None:
    """Put CLI choices into the environment so that Sanic's worker processes load the same settings."""
    for name, value in values.items():
        os.environ[PREFIX + name.upper()] = value


def is_sanic_worker() -> bool:
    """True inside a Sanic worker process (Sanic names each worker in the environment)."""
    return bool(os.environ.get("SANIC_WORKER_NAME"))


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"{path}:{number}: expected NAME=value")
        if not name.startswith(PREFIX):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def _build(raw: dict[str, str]) -> Settings:
    values: dict[str, Any] = {}  # in table order, so a computed default sees the settings before it
    for spec in SPECS:
        variable, text = _given(spec, raw)
        if not text:
            variable, text = spec.variable, spec.default_text(values)
        values[spec.attribute] = spec.parse(text, variable)
    current = NOT_SETTINGS | {spec.variable for spec in SPECS}
    old = {PREFIX + name: spec.variable for spec in SPECS for name in spec.old_names}
    others = sorted(set(raw) - current - set(old))
    return Settings(
        **values,
        unknown_variables=tuple((name, _closest(name, current)) for name in others),
        renamed_variables=tuple((name, old[name]) for name in sorted(set(raw) & set(old))),
        extra={name[len(PREFIX) :].lower(): raw[name] for name in others},
    )


def _given(spec: SettingSpec, raw: dict[str, str]) -> tuple[str, str]:
    """The variable that sets this spec and its text: the name, else an old name; an empty one is unset."""
    for variable in (spec.variable, *(PREFIX + name for name in spec.old_names)):
        if raw.get(variable):
            return variable, raw[variable]
    return spec.variable, ""


def _closest(name: str, known: set[str]) -> str | None:
    # Compare without the shared prefix, or every name would look alike.
    suffixes = {k[len(PREFIX) :]: k for k in known}
    matches = difflib.get_close_matches(name[len(PREFIX) :], sorted(suffixes), n=1, cutoff=0.6)
    return suffixes[matches[0]] if matches else None


def prepare_data_dir(settings: Settings) -> None:
    """The data dir, 0700: mkdir's mode only applies to a new one, so an existing one is tightened."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"CODEX_LB_DATA_DIR={settings.data_dir}: cannot create it ({exc.strerror})"
        ) from None
    make_owner_only(settings.data_dir)
