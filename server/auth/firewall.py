"""The local-only rule: until authentication is configured, only requests from this machine are served.

The socket peer decides, and forwarding headers make a request non-local (never local): a remote client
cannot claim to be local through a header, nor reach us through a reverse proxy on this host. Only a
trusted proxy (server/auth/clients.py) on this host that forwards for a loopback client is local, and
only when no other forwarding header names someone else.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from sanic import Request

from server.auth.clients import (
    client_address,
    forwarded_chain,
    forwarding_disagrees,
    peer_address,
    via_trusted_proxy,
)
from server.errors import ProxyError


@lru_cache(maxsize=1024)
def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def is_local_request(request: Request) -> bool:
    """A loopback socket peer, a local Host header (no DNS rebinding) and no forwarding headers (a
    reverse proxy on this host relays someone else)."""
    if not is_loopback(peer_address(request)):
        return False
    if via_trusted_proxy(request):
        # A proxy that names no client fails closed: it might relay anyone.
        return (
            bool(forwarded_chain(request))
            and is_loopback(client_address(request))
            and not forwarding_disagrees(request)
        )
    headers = request.headers
    if any(name in headers for name in FORWARDING_HEADERS):
        return False
    host = headers.get("host", "")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return hostname.lower() in LOCAL_HOSTS


def require_local(request: Request, what: str) -> None:
    if not is_local_request(request):
        raise ProxyError(
            f"{what} only answers requests from this machine until authentication is enabled. "
            "Enable API-key auth to use codex-lb from other hosts, containers or VMs.",
            status=401 if what == "The proxy" else 403,
            type="invalid_request_error",
            code="local_only",
        )
