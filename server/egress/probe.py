"""Checking a proxy: one request through it to an address-echo URL, reporting the exit address and the
latency; the periodic check (one worker of the deployment, under a lease) records the outcome so every
worker stops routing accounts through a proxy that is down, with the reason."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import aiohttp
import orjson

from server.db import Database
from server.egress import store
from server.egress.routes import open_session
from server.egress.store import ProxyRecord

log = logging.getLogger(__name__)

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=10)
CHECK_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    exit_address: str
    latency_ms: float
    detail: str

    def public(self) -> dict:
        return {
            "ok": self.ok,
            "exit_address": self.exit_address or None,
            "latency_ms": round(self.latency_ms, 1),
            "detail": self.detail,
        }


async def probe(proxy: ProxyRecord, probe_url: str, any_answer: bool = False) -> ProbeResult:
    """GET `probe_url` through the proxy on a fresh connection (a pooled one would hide a dead proxy).
    `any_answer`: every HTTP answer proves the proxy works (the health check asks the upstream itself)."""
    started = time.monotonic()
    session = open_session(proxy)
    try:
        async with session.get(
            probe_url, timeout=PROBE_TIMEOUT, headers={"accept": "application/json"}
        ) as answer:
            raw = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        cause = exc.__cause__ or exc
        detail = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        return ProbeResult(False, "", (time.monotonic() - started) * 1000, detail[:300])
    finally:
        await session.close()
    latency_ms = (time.monotonic() - started) * 1000
    if any_answer:
        return ProbeResult(True, "", latency_ms, f"ok (HTTP {status} from the upstream)")
    if status != 200:
        return ProbeResult(False, "", latency_ms, f"the probe URL answered HTTP {status} through the proxy")
    return ProbeResult(True, _address(raw), latency_ms, "ok")


def _address(raw: bytes) -> str:
    """api.ipify.org?format=json answers {"ip": …}; plain echo services answer the bare address."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace").strip()[:64]
    if isinstance(document, dict):
        return str(document.get("ip") or document.get("origin") or "")[:64]
    return str(document)[:64]


async def check_and_record(
    db: Database, proxy: ProxyRecord, probe_url: str, any_answer: bool = False
) -> tuple[ProbeResult, bool]:
    """Probe a proxy and store the outcome; (result, whether its health changed)."""
    result = await probe(proxy, probe_url, any_answer)
    changed = await db.run(
        store.record_check, proxy.id, result.ok, result.detail, result.exit_address, result.latency_ms
    )
    if changed:
        log.warning("egress proxy health proxy=%s ok=%s detail=%s", proxy.name, result.ok, result.detail)
    return result, changed


async def check_all(db: Database, proxies: list[ProxyRecord], upstream_url: str) -> bool:
    """The periodic check of every proxy: can it reach the upstream (any HTTP answer will do, so an
    operator whose network blocks the address-echo service still gets working health checks)?
    True when any proxy's health changed."""
    changed = False
    for proxy in proxies:
        _, flipped = await check_and_record(db, proxy, upstream_url, any_answer=True)
        changed = changed or flipped
    return changed
