"""Who is on the other end: the client address, scheme and host of a request.

Forwarding headers (Forwarded, X-Forwarded-For/-Proto/-Host) are believed only when
CODEX_LB_FIREWALL_TRUST_PROXY_HEADERS is on and the socket peer is in CODEX_LB_FIREWALL_TRUSTED_PROXY_CIDRS;
from anyone else they are ignored. The API-key rule, the dashboard sign-in, throttling and the logs all
ask this module, so a spoofed header fools none of them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from sanic import Request

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


def forwarded_chain(request: Request) -> list[str]:
    """The addresses the proxies recorded, client first: `Forwarded: for=` or else X-Forwarded-For."""
    forwarded = request.headers.getall("forwarded", [])
    if forwarded:
        chain = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    chain.append(value.strip().strip('"'))
        return chain
    return [
        part.strip()
        for part in ",".join(request.headers.getall("x-forwarded-for", [])).split(",")
        if part.strip()
    ]


def client_address(request: Request) -> str:
    """The peer, or (through a trusted proxy) the nearest forwarded address that is not a trusted proxy."""
    cached = getattr(request.ctx, "client_address", None)
    if cached is not None:
        return cached
    address = peer_address(request)
    networks = _trusted_networks(request)
    if networks and _in(address, networks):
        chain = forwarded_chain(request)
        for hop in reversed(chain):
            if not _in(hop, networks):
                address = _normal(hop)
                break
        else:
            address = _normal(chain[0]) if chain else address
    request.ctx.client_address = address
    return address


def _normal(hop: str) -> str:
    ip = _ip(hop)
    return str(ip) if ip is not None else hop[:64]


def is_loopback_address(address: str) -> bool:
    ip = _ip(address)
    return ip is not None and ip.is_loopback


def _forwarded_param(request: Request, name: str) -> str:
    for element in ",".join(request.headers.getall("forwarded", [])).split(","):
        for pair in element.split(";"):
            key, _, value = pair.strip().partition("=")
            if key.lower() == name:
                return value.strip().strip('"')
    return ""


def request_scheme(request: Request) -> str:
    """http or https as the browser sees it (a trusted TLS proxy's X-Forwarded-Proto counts)."""
    if via_trusted_proxy(request):
        proto = _forwarded_param(request, "proto") or request.headers.get("x-forwarded-proto", "")
        proto = proto.split(",", 1)[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return "https" if request.conn_info and request.conn_info.ssl else "http"


def request_host(request: Request) -> str:
    """host[:port] as the browser addressed it (a trusted proxy's X-Forwarded-Host counts)."""
    if via_trusted_proxy(request):
        host = _forwarded_param(request, "host") or request.headers.get("x-forwarded-host", "")
        host = host.split(",", 1)[0].strip()
        if host:
            return host.lower()
    return request.headers.get("host", "").strip().lower()
