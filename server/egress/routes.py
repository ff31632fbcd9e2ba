"""Each worker's egress routes: which way an account's traffic leaves (direct, a proxy, or a proxy chosen
from a weighted pool) and one pooled aiohttp session per proxy, cached for the worker's life.

Served from memory (reloaded with the roster): choosing a route never touches the database. Fail closed:
an account bound to a proxy or pool whose proxies are all down has no route and is not routed to; it is
never sent direct instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import ssl
import time
from dataclasses import dataclass

import aiohttp
import aiohttp_socks
import python_socks

from server.egress import store
from server.egress.store import Binding, ProxyRecord

log = logging.getLogger(__name__)

NOBODY: frozenset[int] = frozenset()
RETIRE_AFTER_S = 600.0  # a replaced proxy session is closed this long after (streams end before that)
DOWN_FOR_S = 30.0  # a proxy that refused a connection is not used by this worker for this long


class EgressUnavailable(aiohttp.ClientConnectionError):
    """The account's proxy (or every proxy of its pool) is down: fail closed, never direct."""


class EgressProxyFailed(aiohttp.ClientConnectionError):
    """A connection through a proxy failed at the proxy (refused, auth, timeout)."""


@dataclass(frozen=True, slots=True)
class Route:
    """How one account's traffic leaves: `session` None means the worker's direct session."""

    label: str  # "" direct, "proxy:<name>"
    session: aiohttp.ClientSession | None
    proxy_id: int | None = None


DIRECT = Route("", None)


class _Connector(aiohttp_socks.ProxyConnector):
    """aiohttp_socks' connector whose proxy failures are aiohttp connection errors (so every caller's
    existing `except aiohttp.ClientError` fails over) and mark the proxy down in this worker."""

    def __init__(self, proxy_id: int, on_failure, **kwargs) -> None:
        super().__init__(**kwargs)
        self._proxy_id = proxy_id
        self._on_failure = on_failure

    async def _wrap_create_connection(self, *args, **kwargs):
        try:
            return await super()._wrap_create_connection(*args, **kwargs)
        except (
            aiohttp_socks.ProxyConnectionError,
            aiohttp_socks.ProxyTimeoutError,
            aiohttp_socks.ProxyError,
            python_socks.ProxyConnectionError,
            python_socks.ProxyTimeoutError,
            python_socks.ProxyError,
            OSError,
            TimeoutError,
        ) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            self._on_failure(self._proxy_id, reason)
            raise EgressProxyFailed(f"egress proxy failed: {reason}") from exc


def open_session(proxy: ProxyRecord, on_failure=lambda _id, _reason: None) -> aiohttp.ClientSession:
    """A pooled session whose every connection is tunnelled through `proxy`."""
    scheme, _, rest = proxy.url.partition("://")
    host, _, port = rest.rpartition(":")
    connector = _Connector(
        proxy.id,
        on_failure,
        proxy_type=python_socks.ProxyType.SOCKS5 if scheme == "socks5" else python_socks.ProxyType.HTTP,
        host=host.strip("[]"),
        port=int(port),
        username=proxy.username or None,
        password=proxy.password or None,
        rdns=True if scheme == "socks5" else None,  # the proxy resolves names: no DNS leak from here
        proxy_ssl=ssl.create_default_context() if scheme == "https" else None,
        limit=0,
        limit_per_host=0,
        keepalive_timeout=60,
    )
    return aiohttp.ClientSession(  # as the direct session (upstream/client.py): no shared cookie jar
        connector=connector,
        skip_auto_headers=("Accept-Encoding",),
        json_serialize=refuse_json,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def refuse_json(value: object) -> str:
    """json_serialize of the upstream sessions: their request bodies are encoded with orjson by whoever
    builds them, so a json= argument is a mistake, refused here rather than encoded by the stdlib."""
    raise TypeError("upstream request bodies are encoded with orjson: pass data=orjson.dumps(body)")


def _pick(account_id: int, proxies: list[ProxyRecord]) -> ProxyRecord:
    """Weighted rendezvous hashing: each account keeps the same proxy of its pool (one exit address)
    while that proxy is up, every worker and replica agrees without talking, and weights share accounts."""

    def score(p: ProxyRecord) -> float:
        digest = hashlib.blake2b(f"{account_id}:{p.id}".encode(), digest_size=8).digest()
        unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
        return -math.log(unit) / p.weight

    return min(proxies, key=score)


class EgressRoutes:
    def __init__(self) -> None:
        self._proxies: dict[int, ProxyRecord] = {}
        self._bindings: dict[int, Binding] = {}
        self._sessions: dict[int, tuple[str, aiohttp.ClientSession]] = {}  # proxy id -> (identity, session)
        self._down: dict[int, tuple[float, str]] = {}  # proxy id -> (until, reason), this worker's view
        self._stale: list[aiohttp.ClientSession] = []
        # unavailable_accounts()' answer and until when it holds (a proxy's down time running out)
        self._unroutable: tuple[frozenset[int], float] = (NOBODY, math.inf)

    @property
    def proxies(self) -> list[ProxyRecord]:
        return list(self._proxies.values())

    def install(self, proxies: list[ProxyRecord], bindings: list[Binding]) -> None:
        self._proxies = {p.id: p for p in proxies}
        self._bindings = {b.account_id: b for b in bindings}
        self._unroutable = (self._unroutable[0], -math.inf)
        for proxy_id, (identity, session) in list(self._sessions.items()):
            proxy = self._proxies.get(proxy_id)
            if proxy is None or _identity(proxy) != identity:
                del self._sessions[proxy_id]
                self._retire(session)

    def _retire(self, session: aiohttp.ClientSession) -> None:
        """Close a replaced proxy's session later: a stream may still be reading from it."""
        self._stale.append(session)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(RETIRE_AFTER_S, lambda: loop.create_task(self._close_stale(session)))

    async def _close_stale(self, session: aiohttp.ClientSession) -> None:
        if session in self._stale:
            self._stale.remove(session)
            await session.close()

    def binding(self, account_id: int) -> Binding | None:
        return self._bindings.get(account_id)

    def mark_down(self, proxy_id: int, reason: str) -> None:
        self._down[proxy_id] = (time.time() + DOWN_FOR_S, reason)
        self._unroutable = (self._unroutable[0], -math.inf)
        proxy = self._proxies.get(proxy_id)
        log.warning("egress proxy down proxy=%s reason=%s", proxy.name if proxy else proxy_id, reason)

    def down_reason(self, proxy: ProxyRecord, now: float) -> str | None:
        """Why this proxy is not used now (this worker saw it fail, or the last check failed), else None."""
        until, reason = self._down.get(proxy.id, (0.0, ""))
        if until > now:
            return reason
        if not proxy.check_ok:
            return proxy.check_detail or "the last check failed"
        return None

    def unavailable(self, account_id: int, now: float | None = None) -> str | None:
        """Why this account has no route right now, or None when it has one (or goes direct)."""
        binding = self._bindings.get(account_id)
        if binding is None:
            return None
        try:
            self._choose(binding, time.time() if now is None else now)
        except EgressUnavailable as exc:
            return str(exc)
        return None

    def unavailable_accounts(self, now: float) -> frozenset[int]:
        """The accounts without a route right now, read on every routed request: the same set object
        for as long as it holds, worked out again only when a proxy goes down or comes back."""
        known, until = self._unroutable
        if now < until:
            return known
        ended = [end for end, _ in self._down.values() if end > now]
        fresh = frozenset(a for a in self._bindings if self.unavailable(a, now) is not None)
        # An equal set keeps its object: what callers cached against it stays valid.
        self._unroutable = (known if fresh == known else fresh, min(ended, default=math.inf))
        return self._unroutable[0]

    def route(self, account_id: int) -> Route:
        """The account's route now; raises EgressUnavailable when it has none (never falls back direct)."""
        binding = self._bindings.get(account_id)
        if binding is None:
            return DIRECT
        proxy = self._choose(binding, time.time())
        return Route(f"proxy:{proxy.name}", self._session(proxy), proxy.id)

    def _choose(self, binding: Binding, now: float) -> ProxyRecord:
        if binding.proxy_id is not None:
            proxy = self._proxies.get(binding.proxy_id)
            if proxy is None:
                raise EgressUnavailable(f"egress proxy {binding.proxy_id} no longer exists")
            reason = self.down_reason(proxy, now)
            if reason is not None:
                raise EgressUnavailable(f"egress proxy {proxy.name} is down: {reason}")
            return proxy
        members = [p for p in self._proxies.values() if p.pool == binding.pool]
        up = [p for p in members if self.down_reason(p, now) is None]
        if not up:
            if not members:
                raise EgressUnavailable(f"egress pool {binding.pool} is empty")
            reasons = "; ".join(f"{p.name}: {self.down_reason(p, now)}" for p in members)
            raise EgressUnavailable(f"every proxy of egress pool {binding.pool} is down ({reasons})")
        return _pick(binding.account_id, up)

    def _session(self, proxy: ProxyRecord) -> aiohttp.ClientSession:
        cached = self._sessions.get(proxy.id)
        if cached is not None:
            return cached[1]
        session = open_session(proxy, self.mark_down)
        self._sessions[proxy.id] = (_identity(proxy), session)
        return session

    async def close(self) -> None:
        for session in [s for _, s in self._sessions.values()] + self._stale:
            await session.close()
        self._sessions.clear()
        self._stale.clear()


def _identity(proxy: ProxyRecord) -> str:
    return f"{proxy.url}\n{proxy.username}\n{proxy.password}"


async def load_into(routes: EgressRoutes, db, box) -> None:
    proxies, bindings = await db.run(store.load, box)
    routes.install(proxies, bindings)
