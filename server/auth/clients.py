"""Who is on the other end: the client address, scheme and host of a request.

Forwarding headers are believed only when CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS is on and the socket peer
is in CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS, and then only one family of them
(CODEX_LB_FIREWALL_FORWARDED_HEADER: X-Forwarded-For/-Proto/-Host, or RFC 7239 Forwarded), read from the
right as nginx's real_ip_recursive and Envoy's trusted hops do: proxies append to what the client sent,
so only the hops the trusted proxies wrote are facts. The API-key rule, the dashboard sign-in, throttling
and the logs all ask this module, so a spoofed header fools none of them.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from functools import lru_cache

from sanic import Request

log = logging.getLogger(__name__)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_address(request: Request) -> str:
    return request.conn_info.client_ip if request.conn_info else ""


@lru_cache(maxsize=4096)
def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = address.strip().strip('"')
    if text.startswith("[") and "]" in text:  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # Forwarded: for=192.0.2.1:4711
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted_networks(request: Request) -> tuple[IPNetwork, ...]:
    settings = getattr(request.app.ctx, "settings", None)
    if settings is None or not settings.firewall_trust_proxy_headers:
        return ()
    return _networks(settings.firewall_trusted_proxy_cidrs)


def _in(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


def via_trusted_proxy(request: Request) -> bool:
    """The socket peer is a proxy whose forwarding headers we believe."""
    networks = _trusted_networks(request)
    return bool(networks) and _in(peer_address(request), networks)


FAMILIES = ("x-forwarded-for", "forwarded")
# Set by some proxies and CDNs beside a family; never believed, but a disagreeing one makes a request
# non-local.
SINGLE_ADDRESS_HEADERS = ("x-real-ip", "true-client-ip", "cf-connecting-ip")
DISAGREEMENT_LOG_EVERY_S = 600.0
_last_disagreement_log = -DISAGREEMENT_LOG_EVERY_S


def _family(request: Request) -> str:
    settings = getattr(request.app.ctx, "settings", None)
    return settings.firewall_forwarded_header if settings is not None else FAMILIES[0]


def _forwarded_elements(request: Request) -> list[dict[str, str]]:
    """RFC 7239 `Forwarded`, one dict of parameters per hop, client first."""
    elements = []
    for element in ",".join(request.headers.getall("forwarded", [])).split(","):
        params = {}
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name:
                params[name.lower()] = value.strip().strip('"')
        elements.append(params)
    return elements


def _list(request: Request, name: str) -> list[str]:
    return [part.strip() for part in ",".join(request.headers.getall(name, [])).split(",") if part.strip()]


def forwarded_chain(request: Request, family: str | None = None) -> list[str]:
    """The addresses the proxies recorded in one header family (the configured one unless named),
    client first."""
    if (family or _family(request)) == "forwarded":
        return [element["for"] for element in _forwarded_elements(request) if element.get("for")]
    return _list(request, "x-forwarded-for")


def _client_hop(chain: list[str], networks: tuple[IPNetwork, ...]) -> int:
    """The rightmost hop not in a trusted network (everything left of it may be the client's own
    invention); the leftmost when every hop is trusted."""
    for index in range(len(chain) - 1, -1, -1):
        if not _in(chain[index], networks):
            return index
    return 0


def client_address(request: Request) -> str:
    """The peer, or (through a trusted proxy) the rightmost address of the believed header family that
    is not a trusted proxy. Other families are ignored: proxies pass a client's own headers through."""
    cached = getattr(request.ctx, "client_address", None)
    if cached is not None:
        return cached
    address = peer_address(request)
    networks = _trusted_networks(request)
    if networks and _in(address, networks):
        chain = forwarded_chain(request)
        if chain:
            address = _normal(chain[_client_hop(chain, networks)])
    request.ctx.client_address = address
    return address


def forwarding_disagrees(request: Request) -> bool:
    """Through a trusted proxy: another forwarding header names a different client than the believed
    family does. One of them is a client's invention (or the proxy sets another family than configured),
    so the request must not count as local."""
    networks = _trusted_networks(request)
    ours = client_address(request)
    family = _family(request)
    other = forwarded_chain(request, next(name for name in FAMILIES if name != family))
    named = [_normal(other[_client_hop(other, networks)])] if other else []
    named += [_normal(value) for name in SINGLE_ADDRESS_HEADERS for value in request.headers.getall(name, [])]
    disagrees = any(address != ours for address in named)
    if disagrees:
        _log_disagreement(request, family)
    return disagrees


def _log_disagreement(request: Request, family: str) -> None:
    global _last_disagreement_log
    now = time.monotonic()
    if now - _last_disagreement_log < DISAGREEMENT_LOG_EVERY_S:
        return
    _last_disagreement_log = now
    log.warning(
        "forwarding headers disagree peer=%s client=%s family=%s: not treated as local. A client may be "
        "sending its own; if your proxy sets another family, set CODEX_LB_FIREWALL_FORWARDED_HEADER "
        "(logged at most every %d s)",
        peer_address(request),
        client_address(request),
        family,
        DISAGREEMENT_LOG_EVERY_S,
    )


def _normal(hop: str) -> str:
    ip = _ip(hop)
    return str(ip) if ip is not None else hop[:64]


def _forwarded_value(request: Request, name: str) -> str:
    """The scheme or host the first trusted proxy saw: the believed family's entry for the client hop
    (RFC 7239 records them per hop; X-Forwarded-Proto/-Host are one value per proxy, the nearest last)."""
    if _family(request) == "forwarded":
        elements = [element for element in _forwarded_elements(request) if element.get("for")]
        if not elements:
            return ""
        chain = [element["for"] for element in elements]
        return elements[_client_hop(chain, _trusted_networks(request))].get(name, "")
    values = _list(request, f"x-forwarded-{name}")
    return values[-1] if values else ""


def request_scheme(request: Request) -> str:
    """http or https as the browser sees it (a trusted TLS proxy's forwarded proto counts)."""
    if via_trusted_proxy(request):
        proto = _forwarded_value(request, "proto").lower()
        if proto in ("http", "https"):
            return proto
    return "https" if request.conn_info and request.conn_info.ssl else "http"


def request_host(request: Request) -> str:
    """host[:port] as the browser addressed it (a trusted proxy's forwarded host counts)."""
    if via_trusted_proxy(request):
        host = _forwarded_value(request, "host")
        if host:
            return host.lower()
    return request.headers.get("host", "").strip().lower()
