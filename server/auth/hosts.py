"""The names /api and the dashboard answer to: the defence against DNS rebinding.

A page on attacker.example can point its own name at 127.0.0.1 (or this host's LAN address) and then
read and drive this server from a victim's browser as same-origin: the Origin check cannot tell. What
the browser still sends is `Host: attacker.example`, so /api and the dashboard answer only names that
cannot be rebound: IP addresses, `localhost` and `*.localhost` (browsers resolve those themselves),
this machine's host name, the name it is bound to, and those configured (CODEX_LB_ALLOWED_HOSTS and the
hosts of CODEX_LB_ALLOWED_ORIGINS). In every sign-in mode: with `disabled` the port itself is the only
key. Proxy routes need no such rule (a browser holds no key for them), nor do /health and /metrics
(probes and scrapers address the server by service names).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from sanic import Request

from server.auth.clients import client_address, request_host
from server.config import Settings
from server.errors import ProxyError

log = logging.getLogger(__name__)

UNGUARDED_PREFIXES = ("/v1/", "/backend-api/", "/health", "/metrics")


def hostname(authority: str) -> str:
    """The name of a Host value: without port, brackets or a trailing dot, lower case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    if authority.count(":") == 1:
        authority = authority.split(":", 1)[0]
    return authority.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


class AllowedHosts:
    """The names of one app's settings and this machine, decided once per worker."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.allowed_hosts
        names = {hostname(socket.gethostname()), hostname(settings.host)}
        names.update(hostname(urlsplit(origin).netloc) for origin in settings.allowed_origins)
        names.update(name for name in configured if not name.startswith(".") and name != "*")
        self.names = frozenset(names)
        self.domains = tuple(name for name in configured if name.startswith("."))
        self.anything = "*" in configured

    def allows(self, name: str) -> bool:
        if not name or _is_ip(name) or name == "localhost" or name.endswith(".localhost"):
            return True  # no Host at all comes from no browser
        return (
            self.anything
            or name in self.names
            or any(name == domain[1:] or name.endswith(domain) for domain in self.domains)
        )


def _allowed_hosts(request: Request) -> AllowedHosts:
    ctx = request.app.ctx
    allowed = getattr(ctx, "allowed_hosts", None)
    if allowed is None:
        allowed = ctx.allowed_hosts = AllowedHosts(ctx.settings)
    return allowed


def check_host(request: Request) -> None:
    """Raise 403 host_not_allowed for /api and dashboard requests addressed to a name we do not own."""
    if request.path.startswith(UNGUARDED_PREFIXES):
        return
    name = hostname(request_host(request))
    if _allowed_hosts(request).allows(name):
        return
    log.warning(
        "request refused: host not allowed client=%s method=%s path=%s host=%s",
        client_address(request),
        request.method,
        request.path,
        name[:100],
    )
    raise ProxyError(
        f"This server does not answer to the name '{name[:100]}'. If that name is yours, add it to "
        "CODEX_LB_ALLOWED_HOSTS (a web page on another site can point its own name at this server, "
        "so only listed names, IP addresses and localhost are served).",
        status=403,
        type="invalid_request_error",
        code="host_not_allowed",
    )
