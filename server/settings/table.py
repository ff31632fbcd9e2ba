"""Every CODEX_LB_* setting, once: the settings object (server/config.py), the run-time settings'
validation (server/runtime_settings.py) and docs/configuration.md all come from this table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.settings.kinds import Choice, CommaList, DatabaseUrl, FilePath, Flag, Number, Text, Url
from server.settings.spec import Computed, SettingSpec

CONTAINER_DATA_DIR = Path("/var/lib/codex-lb")
DAY = 86400
MIB = 1024 * 1024
GIB = 1024 * MIB


def _seconds(low: float = 0.1, high: float = 30 * DAY) -> Number:
    return Number(low, high, unit="seconds")


def _whole(low: int, high: int, unit: str = "") -> Number:
    return Number(low, high, unit=unit, whole=True)


def _in_image(host: str, image: str) -> Computed:
    return lambda so_far: image if so_far["in_container"] else host


def _data_dir(so_far: Mapping[str, Any]) -> str:
    return str(CONTAINER_DATA_DIR if so_far["in_container"] else Path.home() / ".codex-lb")


PLACES = (
    SettingSpec(
        "IN_CONTAINER",
        Flag(),
        "false",
        "`true`: the container defaults marked below. Only this variable, and only from the process "
        "environment, decides it: a dev container is a host",
        shown_default="unset (the Docker image sets `1`)",
    ),
    SettingSpec(
        "DATA_DIR",
        FilePath(),
        _data_dir,
        "database, encryption key; 0700 (an existing one is tightened, or a warning says why not)",
        shown_default="`~/.codex-lb` (host), `/var/lib/codex-lb` (container)",
    ),
    SettingSpec(
        "DATABASE_URL",
        DatabaseUrl(),
        lambda so_far: f"sqlite:///{so_far['data_dir'] / 'store.db'}",
        "`sqlite:////abs/path.db` or `postgresql://user:pass@host:5432/db` (`postgres://`, "
        "`postgresql+asyncpg://`, `sqlite+aiosqlite://` and the like are accepted too)",
        shown_default="`sqlite:///<data dir>/store.db`",
    ),
    SettingSpec(
        "ENCRYPTION_KEY_FILE",
        FilePath(),
        lambda so_far: str(so_far["data_dir"] / "encryption.key"),
        "32-byte key (base64) that encrypts account tokens; 0600, like the SQLite database and its "
        "`-wal`/`-shm`",
        shown_default="`<data dir>/encryption.key`",
    ),
)

LISTENING = (
    SettingSpec(
        "HOST",
        Text("address"),
        _in_image("127.0.0.1", "0.0.0.0"),
        "listen address for `codex-lb` and `scripts/serve`",
        shown_default="`127.0.0.1` (host), `0.0.0.0` (container)",
    ),
    SettingSpec("PORT", _whole(1, 65535), "2455", "listen port for `codex-lb` and `scripts/serve`"),
    SettingSpec(
        "WORKERS",
        _whole(1, 256),
        lambda so_far: str(min(os.cpu_count() or 1, 8)),
        "worker processes for `codex-lb` and `scripts/serve`",
        shown_default="number of cores, at most 8",
    ),
    SettingSpec("DB_THREADS", _whole(1, 64), "8", "database threads per worker"),
    SettingSpec(
        "SHUTDOWN_DRAIN_SECONDS",
        _seconds(0.0, DAY),
        "60",
        "on SIGTERM, how long running streams and turns may take to finish (see "
        "[Stopping and restarts](operations.md#stopping-and-restarts))",
        field="shutdown_drain_s",
    ),
)

UPSTREAM = (
    SettingSpec("UPSTREAM_BASE_URL", Url(), "https://chatgpt.com/backend-api", "the ChatGPT backend"),
    SettingSpec("AUTH_BASE_URL", Url(), "https://auth.openai.com", "the OAuth server"),
    SettingSpec(
        "EGRESS_PROBE_URL",
        Url(),
        "https://api.ipify.org?format=json",
        'what an egress proxy\'s test asks for its exit address (an answer `{"ip": ...}` or the bare '
        "address)",
    ),
    SettingSpec(
        "OAUTH_CALLBACK_HOST",
        Text("address"),
        _in_image("127.0.0.1", "0.0.0.0"),
        "where the browser sign-in callback is received (listened on while a sign-in is pending)",
        shown_default="`127.0.0.1` (host), `0.0.0.0` (container)",
    ),
    SettingSpec(
        "OAUTH_CALLBACK_PORT",
        _whole(1, 65535),
        "1455",
        "its port (the sign-in always redirects to `localhost:1455`: change it only behind a port mapping)",
    ),
    SettingSpec(
        "USAGE_POLL_INTERVAL_SECONDS",
        _seconds(),
        "60",
        "how often each account's usage windows are polled (by one worker of the deployment)",
        field="usage_poll_interval_s",
    ),
    SettingSpec(
        "MODELS_SYNC_INTERVAL_SECONDS",
        _whole(1, DAY, "seconds"),
        "300",
        "how often the model catalog is synced from the upstream",
        field="models_sync_interval_s",
        old_names=("MODELS_SYNC_INTERVAL_S",),
    ),
    SettingSpec(
        "TOKEN_REFRESH_AHEAD_SECONDS",
        _seconds(),
        "3600",
        "refresh access tokens this long before they expire",
        field="token_refresh_ahead_s",
    ),
    SettingSpec(
        "TOKEN_REFRESH_CHECK_SECONDS",
        _seconds(),
        "300",
        "how often to look for tokens about to expire",
        field="token_refresh_check_s",
    ),
)

ROUTING = (
    SettingSpec(
        "ROUTING_STRATEGY",
        Choice(("usage_weighted", "round_robin", "least_inflight")),
        "usage_weighted",
        "how an account is chosen among those with room",
        runtime=True,
    ),
    SettingSpec(
        "STICKY_SESSIONS",
        Flag(),
        "true",
        "keep a conversation on one account; `false`: every turn follows the strategy",
        runtime=True,
    ),
    SettingSpec(
        "PREFER_EARLIER_RESET",
        Choice(("off", "5h", "weekly")),
        "off",
        "among accounts with room, spend the one whose `5h` or `weekly` window resets first",
        runtime=True,
    ),
    SettingSpec(
        "SESSION_PLACEMENT",
        Choice(("headroom", "rendezvous")),
        "headroom",
        "new conversations go where a long one fits (`headroom`) or by hashing alone (`rendezvous`)",
        runtime=True,
    ),
    SettingSpec(
        "ACCOUNT_INFLIGHT_CAP",
        _whole(1, 1000),
        "4",
        "concurrent streams per account before requests go elsewhere or wait",
    ),
    SettingSpec(
        "MAX_ACCOUNTS",
        _whole(1, 10_000),
        "512",
        "most accounts in the pool (the shared slot table's size); beyond it an import is a `409 pool_full`",
    ),
    SettingSpec(
        "MAX_ATTEMPTS", _whole(1, 10), "3", "accounts tried per request before the client sees the error"
    ),
    SettingSpec(
        "POOL_RATE_LIMITS",
        Choice(("keys", "all", "off")),
        "keys",
        "windows in the `x-codex-*` headers: the pool's combined ones for API-key clients (`keys`), for "
        "every client (`all`), or the serving account's (`off`)",
    ),
    SettingSpec(
        "HIDE_UPSTREAM_QUOTA",
        Flag(),
        "false",
        "`true`: key holders see no upstream windows (no headers; the usage routes answer 403)",
    ),
)

REQUESTS = (
    SettingSpec(
        "REQUEST_MAX_BYTES",
        _whole(1024, GIB, "bytes"),
        str(32 * MIB),
        "largest request body (32 MiB); larger ones get a 413",
    ),
    SettingSpec(
        "REQUEST_BODY_TIMEOUT_SECONDS",
        _seconds(),
        "60",
        "a request body must arrive within this time (else 408, connection closed)",
        field="request_body_timeout_s",
    ),
    SettingSpec(
        "BODY_BYTES_IN_FLIGHT",
        _whole(1024, 64 * GIB, "bytes"),
        str(128 * MIB),
        "request-body bytes one worker receives at once (128 MiB); beyond it new bodies get 503 + "
        "`retry-after`",
    ),
    SettingSpec(
        "TRANSCRIPTION_MAX_BYTES",
        _whole(1024, GIB, "bytes"),
        str(25 * MIB),
        "largest audio upload (25 MiB); larger ones get a 413",
    ),
    SettingSpec(
        "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS",
        _seconds(),
        "60",
        "how long one try waits for the backend's head and first content before failing over",
        field="upstream_first_byte_timeout_s",
    ),
    SettingSpec(
        "UPSTREAM_FAILOVER_TIMEOUT_SECONDS",
        _seconds(),
        "120",
        "how long all tries of one request may take together",
        field="upstream_failover_timeout_s",
    ),
    SettingSpec(
        "STREAM_KEEPALIVE_SECONDS",
        _seconds(),
        "10",
        "while a streaming client waits for the first content: SSE comments (HTTP) or `codex.keepalive` "
        "frames (Codex WebSockets) this often",
        field="stream_keepalive_s",
    ),
    SettingSpec(
        "KEY_OUTPUT_ALLOWANCE_TOKENS",
        _whole(0, 10_000_000),
        "4096",
        "output tokens an API-key `tokens`/`cost_usd` limit reserves per request on top of the input "
        "estimate",
    ),
    SettingSpec(
        "API_KEY_AUTH_ENABLED",
        Flag(),
        "false",
        "`true`: the proxy routes want an API key (`Authorization: Bearer sk-clb-…`)",
        runtime=True,
    ),
    SettingSpec(
        "PRICING_OVERRIDES",
        Text("JSON object"),
        "",
        'JSON `{"model": {"input": 1.25, "cached_input": 0.125, "output": 10}}`, USD per 1M tokens '
        "(`cached_input` defaults to `input`), on top of the built-in prices",
        runtime=True,
    ),
    SettingSpec(
        "REQUEST_LOG_RETENTION_DAYS",
        Number(0, 36500, unit="days"),
        "30",
        "raw request-log rows older than this are deleted (in batches); hourly, daily and weekly totals "
        "are kept; `0` keeps everything",
        runtime=True,
    ),
    SettingSpec(
        "USAGE_ROLLUP_INTERVAL_SECONDS",
        _seconds(1, DAY),
        "60",
        "how often new request-log rows are rolled up into the hourly, daily and weekly totals the usage "
        "pages read (and old ones pruned)",
        field="usage_rollup_interval_s",
    ),
)

WEBSOCKETS = (
    SettingSpec(
        "UPSTREAM_STREAM_TRANSPORT",
        Choice(("auto", "http", "websocket")),
        "auto",
        "how turns reach the backend",
        runtime=True,
    ),
    SettingSpec(
        "UPSTREAM_WEBSOCKET_TRUST_ENV",
        Flag(),
        "false",
        "`true`: upstream WebSocket handshakes go through `HTTPS_PROXY`/`HTTP_PROXY` (honouring "
        "`NO_PROXY`); direct otherwise",
    ),
    SettingSpec(
        "UPSTREAM_WEBSOCKETS_PER_ACCOUNT",
        _whole(1, 100_000),
        "64",
        "upstream WebSockets one worker keeps open per account",
        field="upstream_ws_per_account",
        old_names=("UPSTREAM_WS_PER_ACCOUNT",),
    ),
    SettingSpec(
        "UPSTREAM_WEBSOCKETS_TOTAL",
        _whole(1, 1_000_000),
        "1024",
        "upstream WebSockets one worker keeps open in all",
        field="upstream_ws_total",
        old_names=("UPSTREAM_WS_TOTAL",),
    ),
    SettingSpec(
        "WEBSOCKET_IDLE_TIMEOUT_SECONDS",
        _whole(1, DAY, "seconds"),
        "300",
        "a client WebSocket with no turn for this long is closed (1001)",
    ),
    SettingSpec(
        "WEBSOCKET_PING_SECONDS",
        _seconds(0.5, 3600),
        "20",
        "protocol pings on client WebSockets, so proxies in between do not cut idle ones (the Codex CLI "
        "and browsers answer them)",
        field="websocket_ping_s",
    ),
    SettingSpec(
        "WEBSOCKET_QUEUED_BYTES",
        _whole(1024, GIB, "bytes"),
        str(32 * MIB),
        "bytes of turns one client WebSocket may queue behind the running one (32 MiB)",
    ),
    SettingSpec(
        "WEBSOCKET_QUEUED_BYTES_PER_WORKER",
        _whole(1024, 64 * GIB, "bytes"),
        str(256 * MIB),
        "the same over all client WebSockets of a worker (256 MiB)",
    ),
)

DASHBOARD = (
    SettingSpec(
        "DASHBOARD_AUTH_MODE",
        Choice(("standard", "trusted_header", "disabled")),
        "standard",
        "how the dashboard signs people in (see [Dashboard sign-in](security.md#dashboard-sign-in))",
    ),
    SettingSpec(
        "DASHBOARD_AUTH_PROXY_HEADER",
        Text("header name", strip=True),
        "Remote-User",
        "the header naming the user in `trusted_header` mode",
    ),
    SettingSpec(
        "DASHBOARD_BOOTSTRAP_TOKEN",
        Text(min_length=16),
        "",
        "fixes the one-time token that sets the first password remotely",
        secret=True,
        shown_default="generated",
    ),
    SettingSpec(
        "DASHBOARD_SESSION_IDLE_SECONDS",
        _seconds(60),
        str(12 * 3600),
        "a dashboard session unused this long ends",
        field="dashboard_session_idle_s",
    ),
    SettingSpec(
        "DASHBOARD_SESSION_MAX_SECONDS",
        _seconds(60),
        str(7 * DAY),
        "a dashboard session ends this long after sign-in at the latest",
        field="dashboard_session_max_s",
    ),
    SettingSpec(
        "ALLOWED_ORIGINS",
        CommaList("origin"),
        "",
        "browser origins besides the server's own that may call `/api` and open proxy WebSockets "
        "(e.g. `http://localhost:5173`)",
    ),
    SettingSpec(
        "ALLOWED_HOSTS",
        CommaList("host"),
        "",
        "names `/api` and the dashboard answer to besides IP addresses, `localhost` and this host's name "
        "(`codex.example.com`, `.example.com` with subdomains, `*` for any: no DNS-rebinding guard)",
    ),
    SettingSpec(
        "FIREWALL_TRUSTED_PROXY_CIDRS",
        CommaList("network"),
        "",
        "networks of reverse proxies whose forwarding headers (client address, scheme, host, the auth "
        "header) are believed",
    ),
    SettingSpec(
        "FIREWALL_TRUST_PROXY_HEADERS",
        Flag(),
        "false",
        "`true` to believe them (both are needed)",
    ),
    SettingSpec(
        "FIREWALL_FORWARDED_HEADER",
        Choice(("x-forwarded-for", "forwarded")),
        "x-forwarded-for",
        "the one header family believed from them: `x-forwarded-for` (`X-Forwarded-For`, `-Proto`, "
        "`-Host`) or `forwarded` (RFC 7239); see "
        "[Behind a reverse proxy](security.md#behind-a-reverse-proxy)",
    ),
)

OBSERVING = (
    SettingSpec(
        "LOG_LEVEL",
        Choice(("DEBUG", "INFO", "WARNING", "ERROR")),
        "INFO",
        "log lines at this level and above",
    ),
    SettingSpec(
        "LOG_FORMAT",
        Choice(("text", "json")),
        "text",
        "`text` (key=value) or `json`: one JSON object per log line (see "
        "[Metrics and logs](operations.md#metrics-and-logs))",
    ),
    SettingSpec(
        "METRICS_TOKEN",
        Text(),
        "",
        "a bearer token that opens `GET /metrics` to Prometheus (besides dashboard sign-in)",
        secret=True,
    ),
    SettingSpec(
        "METRICS_PORT",
        _whole(0, 65535),
        "0",
        "non-zero: also serve `GET /metrics` on this port of `CODEX_LB_HOST`, without sign-in: keep it "
        "private",
    ),
)

# (title, settings) in the order docs/configuration.md lists them.
GROUPS = (
    ("Where data lives", PLACES),
    ("Listening", LISTENING),
    ("The upstream", UPSTREAM),
    ("Routing", ROUTING),
    ("Requests, limits and usage", REQUESTS),
    ("Streams and WebSockets", WEBSOCKETS),
    ("Dashboard and network trust", DASHBOARD),
    ("Logs and metrics", OBSERVING),
)

SPECS = tuple(spec for _, group in GROUPS for spec in group)
RUNTIME = tuple(spec for spec in SPECS if spec.runtime)
BY_ATTRIBUTE = {spec.attribute: spec for spec in SPECS}
