"""The local-only rule: until authentication is configured, only loopback peers are served.

The socket peer decides; X-Forwarded-For and friends are ignored, so a remote client cannot claim to be
local through a header.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from sanic import Request

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


def peer_address(request: Request) -> str:
    return request.conn_info.client_ip if request.conn_info else ""


def require_local(request: Request, what: str) -> None:
    if not is_loopback(peer_address(request)):
        raise ProxyError(
            f"{what} only answers requests from this machine until authentication is enabled. "
            "Enable API-key auth to use codex-lb from other hosts, containers or VMs.",
            status=401 if what == "The proxy" else 403,
            type="invalid_request_error",
            code="local_only",
        )
