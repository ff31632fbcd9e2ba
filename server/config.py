"""Settings: the one place that reads the environment.

Values come from CODEX_LB_* environment variables, then `.env.local` in the working directory, then
defaults. `Settings.load()` validates everything and raises ConfigError naming the bad variable.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from server.file_modes import make_owner_only

PREFIX = "CODEX_LB_"
ENV_FILE = ".env.local"
CONTAINER_DATA_DIR = Path("/var/lib/codex-lb")
DEFAULT_UPSTREAM_BASE_URL = "https://chatgpt.com/backend-api"
DEFAULT_AUTH_BASE_URL = "https://auth.openai.com"


# CODEX_LB_* names that are not server settings but are ours all the same: the key clients export
# (README's Codex CLI and OpenCode set-ups) and the test suite's database.
NOT_SETTINGS = frozenset({PREFIX + "IN_CONTAINER", PREFIX + "API_KEY", PREFIX + "TEST_DATABASE_URL"})


class ConfigError(ValueError):
    """A setting has a value codex-lb cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    encryption_key_file: Path
    in_container: bool = False
    host: str = "127.0.0.1"
    port: int = 2455
    workers: int = 1
    upstream_base_url: str = DEFAULT_UPSTREAM_BASE_URL
    auth_base_url: str = DEFAULT_AUTH_BASE_URL
    log_level: str = "INFO"
    db_threads: int = 8
    routing_strategy: str = "usage_weighted"
    # Keep a conversation (session key) on one account; run-time override in /api/settings.
    sticky_sessions: bool = True
    # Order accounts with room by the reset of this window: off, 5h, weekly (run-time override).
    prefer_earlier_reset: str = "off"
    # New conversations: headroom (placed where a long one fits, remembered) or rendezvous (hashing).
    session_placement: str = "headroom"
    account_inflight_cap: int = 4
    # Size of the shared-memory slot table: the most accounts the pool holds (import beyond: 409).
    max_accounts: int = 512
    max_attempts: int = 3
    request_max_bytes: int = 32 * 1024 * 1024
    # JSON {"model": {"input": 1.25, "cached_input": 0.125, "output": 10.0}} (USD per 1M tokens).
    pricing_overrides: str = ""
    # Output tokens an API-key limit reserves per request on top of the input estimate (settled later).
    key_output_allowance_tokens: int = 4096
    # Upstream transport for model streams: auto, http or websocket (run-time override in /api/settings).
    upstream_stream_transport: str = "auto"
    # Upstream WebSocket handshakes honour HTTPS_PROXY/HTTP_PROXY when true; direct by default.
    upstream_websocket_trust_env: bool = False
    # What an egress proxy's test asks for its exit address (answers {"ip": …} or the bare address).
    egress_probe_url: str = "https://api.ipify.org?format=json"
    # The x-codex-* windows a client sees: the pool's combined ones for API-key clients ("keys"), for
    # every client ("all"), or the serving account's ("off"); and whether key holders see none at all.
    pool_rate_limits: str = "keys"
    hide_upstream_quota: bool = False
    # A client WebSocket with no turn in flight for this long is closed (1001).
    websocket_idle_timeout_seconds: int = 300
    models_sync_interval_s: int = 300
    transcription_max_bytes: int = 25 * 1024 * 1024
    # Browser sign-in: the redirect URI is fixed to localhost:1455, so listen there while one is pending.
    oauth_callback_host: str = "127.0.0.1"
    oauth_callback_port: int = 1455
    usage_poll_interval_s: float = 60.0
    request_log_retention_days: float = 30.0
    usage_rollup_interval_s: float = 60.0
    # Refresh access tokens this long before they expire (checked every token_refresh_check_s).
    token_refresh_ahead_s: float = 3600.0
    token_refresh_check_s: float = 300.0
    # On SIGTERM, in-flight streams and WebSocket turns get this long to finish before they are cut.
    shutdown_drain_s: float = 60.0
    # Upstream WebSockets one worker keeps open, per account and in all.
    upstream_ws_per_account: int = 64
    upstream_ws_total: int = 1024
    # Client WebSockets get a protocol ping this often, so proxies in between see traffic on idle sockets.
    websocket_ping_s: float = 20.0
    # Intake (issue 12): a request body must arrive within this time; a worker receives at most this many
    # body bytes at once (more: 503 with retry-after).
    request_body_timeout_s: float = 60.0
    body_bytes_in_flight: int = 128 * 1024 * 1024
    # Upstream: time to the response head per attempt, and for the whole failover of one request;
    # streaming clients get an SSE comment every stream_keepalive_s while they wait.
    upstream_first_byte_timeout_s: float = 60.0
    upstream_failover_timeout_s: float = 120.0
    stream_keepalive_s: float = 10.0
    # Client WebSockets: bytes of turns queued behind the running one, per socket and per worker.
    websocket_queued_bytes: int = 32 * 1024 * 1024
    websocket_queued_bytes_per_worker: int = 256 * 1024 * 1024
    # Dashboard sign-in (server/auth): standard, trusted_header or disabled.
    dashboard_auth_mode: str = "standard"
    dashboard_auth_proxy_header: str = "Remote-User"
    dashboard_bootstrap_token: str = field(default="", repr=False)
    dashboard_session_idle_s: float = 12 * 3600.0
    dashboard_session_max_s: float = 7 * 86400.0
    # Browser origins besides the server's own that may call /api and open proxy WebSockets.
    allowed_origins: tuple[str, ...] = ()
    # Host names /api and the dashboard answer to besides loopback names and IP addresses (and the
    # origins above): "name", ".example.com" (it and its subdomains) or "*" (any; no DNS-rebinding guard).
    allowed_hosts: tuple[str, ...] = ()
    # Forwarding headers (the client address, scheme and host, the auth header) are believed only from
    # socket peers in these networks, only when trust_proxy_headers is on, and only of one family:
    # "x-forwarded-for" (X-Forwarded-For/-Proto/-Host) or "forwarded" (RFC 7239).
    firewall_trusted_proxy_cidrs: tuple[str, ...] = ()
    firewall_trust_proxy_headers: bool = False
    firewall_forwarded_header: str = "x-forwarded-for"
    # GET /metrics also answers `Authorization: Bearer <metrics_token>` (Prometheus), besides sign-in.
    metrics_token: str = field(default="", repr=False)
    # Non-zero: GET /metrics also on this port of `host`, without sign-in (keep the port private).
    metrics_port: int = 0
    # Log lines as text (key=value) or one JSON object per line.
    log_format: str = "text"
    # CODEX_LB_* variables that are no setting (a typo?), each with the closest known name.
    unknown_variables: tuple[tuple[str, str | None], ...] = field(default=(), repr=False, compare=False)
    # Raw CODEX_LB_* values, for settings later issues add; never logged.
    extra: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, cwd: Path | None = None) -> Settings:
        raw = _collect(dict(os.environ) if environ is None else environ, cwd or Path.cwd())
        return _build(raw, _detect_container(environ))

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


def _collect(environ: dict[str, str], cwd: Path) -> dict[str, str]:
    raw = _read_env_file(cwd / ENV_FILE)
    raw.update({k: v for k, v in environ.items() if k.startswith(PREFIX)})
    return raw


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


def _detect_container(environ: dict[str, str] | None) -> bool:
    # Only the explicit signal our image sets: developers in dev containers (which have /.dockerenv)
    # should get the same defaults as on their laptop (~/.codex-lb, loopback).
    env = os.environ if environ is None else environ
    return env.get(PREFIX + "IN_CONTAINER", "").strip().lower() in ("1", "true", "yes")


def _build(raw: dict[str, str], in_container: bool) -> Settings:
    read = set(NOT_SETTINGS)  # every name get() is asked for is a known setting

    def get(name: str, default: str) -> str:
        read.add(PREFIX + name)
        value = raw.get(PREFIX + name)
        return default if value is None or value == "" else value

    default_dir = CONTAINER_DATA_DIR if in_container else Path.home() / ".codex-lb"
    data_dir = Path(get("DATA_DIR", str(default_dir))).expanduser()
    database_url = normalise_database_url(get("DATABASE_URL", f"sqlite:///{data_dir / 'store.db'}"))
    key_file = Path(get("ENCRYPTION_KEY_FILE", str(data_dir / "encryption.key"))).expanduser()
    known = {f.name for f in fields(Settings)}
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        encryption_key_file=key_file,
        in_container=in_container,
        host=get("HOST", "0.0.0.0" if in_container else "127.0.0.1"),
        port=_int(raw, "PORT", get("PORT", "2455"), 1, 65535),
        workers=_int(raw, "WORKERS", get("WORKERS", str(min(os.cpu_count() or 1, 8))), 1, 256),
        upstream_base_url=_http_url("UPSTREAM_BASE_URL", get("UPSTREAM_BASE_URL", DEFAULT_UPSTREAM_BASE_URL)),
        auth_base_url=_http_url("AUTH_BASE_URL", get("AUTH_BASE_URL", DEFAULT_AUTH_BASE_URL)),
        log_level=_choice(
            "LOG_LEVEL", get("LOG_LEVEL", "INFO").upper(), ("DEBUG", "INFO", "WARNING", "ERROR")
        ),
        db_threads=_int(raw, "DB_THREADS", get("DB_THREADS", "8"), 1, 64),
        routing_strategy=_choice(
            "ROUTING_STRATEGY",
            get("ROUTING_STRATEGY", "usage_weighted").lower(),
            ("usage_weighted", "round_robin", "least_inflight"),
        ),
        sticky_sessions=_bool("STICKY_SESSIONS", get("STICKY_SESSIONS", "true")),
        prefer_earlier_reset=_choice(
            "PREFER_EARLIER_RESET", get("PREFER_EARLIER_RESET", "off").lower(), ("off", "5h", "weekly")
        ),
        session_placement=_choice(
            "SESSION_PLACEMENT", get("SESSION_PLACEMENT", "headroom").lower(), ("headroom", "rendezvous")
        ),
        account_inflight_cap=_int(raw, "ACCOUNT_INFLIGHT_CAP", get("ACCOUNT_INFLIGHT_CAP", "4"), 1, 1000),
        max_accounts=_int(raw, "MAX_ACCOUNTS", get("MAX_ACCOUNTS", "512"), 1, 10_000),
        max_attempts=_int(raw, "MAX_ATTEMPTS", get("MAX_ATTEMPTS", "3"), 1, 10),
        request_max_bytes=_int(
            raw, "REQUEST_MAX_BYTES", get("REQUEST_MAX_BYTES", str(32 * 1024 * 1024)), 1024, 1024**3
        ),
        pricing_overrides=get("PRICING_OVERRIDES", ""),
        key_output_allowance_tokens=_int(
            raw, "KEY_OUTPUT_ALLOWANCE_TOKENS", get("KEY_OUTPUT_ALLOWANCE_TOKENS", "4096"), 0, 10_000_000
        ),
        upstream_stream_transport=_choice(
            "UPSTREAM_STREAM_TRANSPORT",
            get("UPSTREAM_STREAM_TRANSPORT", "auto").lower(),
            ("auto", "http", "websocket"),
        ),
        upstream_websocket_trust_env=_bool(
            "UPSTREAM_WEBSOCKET_TRUST_ENV", get("UPSTREAM_WEBSOCKET_TRUST_ENV", "false")
        ),
        egress_probe_url=_http_url(
            "EGRESS_PROBE_URL", get("EGRESS_PROBE_URL", "https://api.ipify.org?format=json")
        ),
        pool_rate_limits=_choice(
            "POOL_RATE_LIMITS", get("POOL_RATE_LIMITS", "keys").lower(), ("keys", "all", "off")
        ),
        hide_upstream_quota=_bool("HIDE_UPSTREAM_QUOTA", get("HIDE_UPSTREAM_QUOTA", "false")),
        websocket_idle_timeout_seconds=_int(
            raw, "WEBSOCKET_IDLE_TIMEOUT_SECONDS", get("WEBSOCKET_IDLE_TIMEOUT_SECONDS", "300"), 1, 86400
        ),
        models_sync_interval_s=_int(
            raw, "MODELS_SYNC_INTERVAL_S", get("MODELS_SYNC_INTERVAL_S", "300"), 1, 86400
        ),
        transcription_max_bytes=_int(
            raw, "TRANSCRIPTION_MAX_BYTES", get("TRANSCRIPTION_MAX_BYTES", str(25 * 1024**2)), 1024, 1024**3
        ),
        oauth_callback_host=get("OAUTH_CALLBACK_HOST", "0.0.0.0" if in_container else "127.0.0.1"),
        oauth_callback_port=_int(raw, "OAUTH_CALLBACK_PORT", get("OAUTH_CALLBACK_PORT", "1455"), 1, 65535),
        usage_poll_interval_s=_seconds(
            "USAGE_POLL_INTERVAL_SECONDS", get("USAGE_POLL_INTERVAL_SECONDS", "60")
        ),
        request_log_retention_days=_days(get("REQUEST_LOG_RETENTION_DAYS", "30")),
        usage_rollup_interval_s=_seconds(
            "USAGE_ROLLUP_INTERVAL_SECONDS", get("USAGE_ROLLUP_INTERVAL_SECONDS", "60"), 1, 86400
        ),
        token_refresh_ahead_s=_seconds(
            "TOKEN_REFRESH_AHEAD_SECONDS", get("TOKEN_REFRESH_AHEAD_SECONDS", "3600")
        ),
        token_refresh_check_s=_seconds(
            "TOKEN_REFRESH_CHECK_SECONDS", get("TOKEN_REFRESH_CHECK_SECONDS", "300")
        ),
        shutdown_drain_s=_seconds(
            "SHUTDOWN_DRAIN_SECONDS", get("SHUTDOWN_DRAIN_SECONDS", "60"), 0.0, 24 * 3600
        ),
        upstream_ws_per_account=_int(
            raw, "UPSTREAM_WS_PER_ACCOUNT", get("UPSTREAM_WS_PER_ACCOUNT", "64"), 1, 100_000
        ),
        upstream_ws_total=_int(raw, "UPSTREAM_WS_TOTAL", get("UPSTREAM_WS_TOTAL", "1024"), 1, 1_000_000),
        websocket_ping_s=_seconds("WEBSOCKET_PING_SECONDS", get("WEBSOCKET_PING_SECONDS", "20"), 0.5, 3600),
        **_reliability(raw, get),
        dashboard_auth_mode=_choice(
            "DASHBOARD_AUTH_MODE",
            get("DASHBOARD_AUTH_MODE", "standard").lower(),
            ("standard", "trusted_header", "disabled"),
        ),
        dashboard_auth_proxy_header=get("DASHBOARD_AUTH_PROXY_HEADER", "Remote-User").strip(),
        dashboard_bootstrap_token=_bootstrap_token(get("DASHBOARD_BOOTSTRAP_TOKEN", "")),
        dashboard_session_idle_s=_seconds(
            "DASHBOARD_SESSION_IDLE_SECONDS", get("DASHBOARD_SESSION_IDLE_SECONDS", "43200"), 60
        ),
        dashboard_session_max_s=_seconds(
            "DASHBOARD_SESSION_MAX_SECONDS", get("DASHBOARD_SESSION_MAX_SECONDS", "604800"), 60
        ),
        metrics_token=get("METRICS_TOKEN", ""),
        metrics_port=_int(raw, "METRICS_PORT", get("METRICS_PORT", "0"), 0, 65535),
        log_format=_choice("LOG_FORMAT", get("LOG_FORMAT", "text").lower(), ("text", "json")),
        allowed_origins=_origins(get("ALLOWED_ORIGINS", "")),
        allowed_hosts=_hosts(get("ALLOWED_HOSTS", "")),
        firewall_trusted_proxy_cidrs=_cidrs(get("FIREWALL_TRUSTED_PROXY_CIDRS", "")),
        firewall_trust_proxy_headers=_bool(
            "FIREWALL_TRUST_PROXY_HEADERS", get("FIREWALL_TRUST_PROXY_HEADERS", "false")
        ),
        firewall_forwarded_header=_choice(
            "FIREWALL_FORWARDED_HEADER",
            get("FIREWALL_FORWARDED_HEADER", "x-forwarded-for").strip().lower(),
            ("x-forwarded-for", "forwarded"),
        ),
        extra={k[len(PREFIX) :].lower(): v for k, v in raw.items() if k[len(PREFIX) :].lower() not in known},
    )
    unknown = tuple((name, _closest(name, read)) for name in sorted(set(raw) - read))
    return replace(settings, unknown_variables=unknown)


def _closest(name: str, known: set[str]) -> str | None:
    # Compare without the shared prefix, or every name would look alike.
    suffixes = {k[len(PREFIX) :]: k for k in known}
    matches = difflib.get_close_matches(name[len(PREFIX) :], sorted(suffixes), n=1, cutoff=0.6)
    return suffixes[matches[0]] if matches else None


def _reliability(raw: dict[str, str], get) -> dict:
    mib = 1024 * 1024
    values = {
        "request_body_timeout_s": _seconds(
            "REQUEST_BODY_TIMEOUT_SECONDS", get("REQUEST_BODY_TIMEOUT_SECONDS", "60")
        ),
        "body_bytes_in_flight": _int(
            raw, "BODY_BYTES_IN_FLIGHT", get("BODY_BYTES_IN_FLIGHT", str(128 * mib)), 1024, 64 * 1024**3
        ),
        "upstream_first_byte_timeout_s": _seconds(
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", get("UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", "60")
        ),
        "upstream_failover_timeout_s": _seconds(
            "UPSTREAM_FAILOVER_TIMEOUT_SECONDS", get("UPSTREAM_FAILOVER_TIMEOUT_SECONDS", "120")
        ),
        "stream_keepalive_s": _seconds("STREAM_KEEPALIVE_SECONDS", get("STREAM_KEEPALIVE_SECONDS", "10")),
        "websocket_queued_bytes": _int(
            raw, "WEBSOCKET_QUEUED_BYTES", get("WEBSOCKET_QUEUED_BYTES", str(32 * mib)), 1024, 1024**3
        ),
        "websocket_queued_bytes_per_worker": _int(
            raw,
            "WEBSOCKET_QUEUED_BYTES_PER_WORKER",
            get("WEBSOCKET_QUEUED_BYTES_PER_WORKER", str(256 * mib)),
            1024,
            64 * 1024**3,
        ),
    }
    return values


def _int(raw: dict[str, str], name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={value!r} is not a whole number") from None
    if not low <= number <= high:
        raise ConfigError(f"{PREFIX}{name}={number} is out of range ({low}..{high})")
    return number


def _days(value: str) -> float:
    """Request-log retention in days; 0 keeps raw rows forever."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}REQUEST_LOG_RETENTION_DAYS={value!r} is not a number of days") from None
    if not 0 <= number <= 36500:
        raise ConfigError(f"{PREFIX}REQUEST_LOG_RETENTION_DAYS={number} is out of range (0..36500 days)")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name}={value!r} must be true or false")


def _seconds(name: str, value: str, low: float = 0.1, high: float = 30 * 86400) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={value!r} is not a number of seconds") from None
    if not low <= number <= high:
        raise ConfigError(f"{PREFIX}{name}={number} is out of range ({low}..{high} seconds)")
    return number


def _bootstrap_token(value: str) -> str:
    if value and len(value) < 16:
        raise ConfigError(f"{PREFIX}DASHBOARD_BOOTSTRAP_TOKEN must be at least 16 characters")
    return value


def _origins(value: str) -> tuple[str, ...]:
    origins = []
    for origin in filter(None, (part.strip().rstrip("/") for part in value.split(","))):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                f"{PREFIX}ALLOWED_ORIGINS: {origin!r} is not an origin like https://dash.example.com"
            )
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(origins)


_HOST_NAME = re.compile(r"\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def _hosts(value: str) -> tuple[str, ...]:
    hosts = []
    for host in filter(None, (part.strip().lower().rstrip(".") for part in value.split(","))):
        if host != "*" and not _HOST_NAME.fullmatch(host):
            raise ConfigError(
                f"{PREFIX}ALLOWED_HOSTS: {host!r} is not a host name like codex.example.com, "
                ".example.com (a domain and its subdomains) or * (list names without a port)"
            )
        hosts.append(host)
    return tuple(hosts)


def _cidrs(value: str) -> tuple[str, ...]:
    networks = []
    for part in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"{PREFIX}FIREWALL_TRUSTED_PROXY_CIDRS: {part!r} is not a network") from None
    return tuple(networks)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{PREFIX}{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{PREFIX}{name}={value!r} must be an http:// or https:// URL")
    return value.rstrip("/")


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
            f"{PREFIX}DATABASE_URL={_redact_url(url)!r} is not a database URL "
            "(expected sqlite:///path or postgresql://user@host/db)"
        )
    if canonical == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"{PREFIX}DATABASE_URL must name a file, like sqlite:////var/lib/codex-lb/store.db"
            )
        path = Path(rest[1:].split("?", 1)[0]).expanduser()
        return f"sqlite:///{path if path.is_absolute() else path.resolve()}"
    if not rest or rest.startswith("/"):
        raise ConfigError(f"{PREFIX}DATABASE_URL={_redact_url(url)!r} has no host")
    return f"postgresql://{rest}"


def sqlite_path(database_url: str) -> Path:
    return Path(database_url[len("sqlite:///") :])


def _redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


redact_database_url = _redact_url


def prepare_data_dir(settings: Settings) -> None:
    """The data dir, 0700: mkdir's mode only applies to a new one, so an existing one is tightened."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"CODEX_LB_DATA_DIR={settings.data_dir}: cannot create it ({exc.strerror})"
        ) from None
    make_owner_only(settings.data_dir)
