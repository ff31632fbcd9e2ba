"""The per-worker HTTP client of the ChatGPT backend and the OAuth server (one pooled aiohttp session).

Every call has an explicit timeout; streams have no total limit but a read timeout between chunks.
"""

from __future__ import annotations

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from server.config import Settings
from server.egress.routes import DIRECT, EgressRoutes, Route, refuse_json
from server.upstream.websocket import websocket_url

CONNECT_TIMEOUT_S = 10.0
STREAM_IDLE_TIMEOUT_S = 300.0  # the Codex CLI's own stream_idle_timeout
JSON_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=CONNECT_TIMEOUT_S)
STREAM_TIMEOUT = aiohttp.ClientTimeout(
    total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=STREAM_IDLE_TIMEOUT_S
)


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.upstream_base_url
        self.auth_url = settings.auth_base_url
        self.responses_url = f"{self.base_url}/codex/responses"
        self.compact_url = f"{self.base_url}/codex/responses/compact"
        self.responses_ws_url = websocket_url(self.responses_url)
        self._trust_env = settings.upstream_websocket_trust_env
        self.transcribe_url = f"{self.base_url}/transcribe"
        self._session: aiohttp.ClientSession | None = None
        self.ws_proxy: tuple[URL, aiohttp.BasicAuth | None] | None = None
        self.egress = EgressRoutes()  # per-account proxies; their sessions live as long as this client

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
        # auto_decompress stays on for JSON; SSE arrives uncompressed because we do not ask for gzip.
        # No cookie jar: cookies the backend's edge sets on one account's answers would travel with every
        # account's requests, tying the accounts together (the Codex CLI keeps none either).
        self._session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("Accept-Encoding",),
            json_serialize=refuse_json,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        if self._trust_env:
            # HTTPS_PROXY/HTTP_PROXY (and NO_PROXY) for the backend's http(s) URL, as aiohttp reads them;
            # aiohttp's own trust_env would look for WS_PROXY/WSS_PROXY on a ws:// URL instead.
            try:
                self.ws_proxy = get_env_proxy_for_url(URL(self.responses_url))
            except LookupError:
                self.ws_proxy = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return self._session

    def route(self, account_id: int | None) -> Route:
        """The account's egress route (raises EgressUnavailable, an aiohttp connection error, when its
        proxy is down: callers fail over as for any connection error, never go direct)."""
        return DIRECT if account_id is None else self.egress.route(account_id)

    def session_for(self, account_id: int | None) -> aiohttp.ClientSession:
        return self.route(account_id).session or self.session

    async def close(self) -> None:
        await self.egress.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # `via`: the session of the account's egress route (None: direct).
    async def open_stream(
        self, url: str, body: bytes, headers: dict[str, str], via: aiohttp.ClientSession | None = None
    ) -> aiohttp.ClientResponse:
        """POST and return as soon as the status and headers arrive; the caller reads and releases it."""
        return await (via or self.session).post(url, data=body, headers=headers, timeout=STREAM_TIMEOUT)

    async def get_json(
        self, url: str, headers: dict[str, str], via: aiohttp.ClientSession | None = None
    ) -> tuple[int, dict, bytes]:
        async with (via or self.session).get(url, headers=headers, timeout=JSON_TIMEOUT) as response:
            return response.status, dict(response.headers), await response.read()

    async def post_form(
        self, url: str, form, headers: dict[str, str], via: aiohttp.ClientSession | None = None
    ) -> tuple[int, dict, bytes]:
        """A multipart POST (aiohttp.FormData sets the content type with its boundary)."""
        async with (via or self.session).post(
            url, data=form, headers=headers, timeout=JSON_TIMEOUT
        ) as response:
            return response.status, dict(response.headers), await response.read()

    async def post_json(
        self, url: str, body: bytes, headers: dict[str, str], via: aiohttp.ClientSession | None = None
    ) -> tuple[int, dict, bytes]:
        headers = {**headers, "content-type": "application/json"}
        async with (via or self.session).post(
            url, data=body, headers=headers, timeout=JSON_TIMEOUT
        ) as response:
            return response.status, dict(response.headers), await response.read()
