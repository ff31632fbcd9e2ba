"""Cross-site protection: a web page in someone's browser must not drive this server.

Browsers say where a request comes from (Origin; Sec-Fetch-Site); the Codex CLI, SDKs and curl send
neither. So on /api/* and the proxy routes (WebSocket upgrades included) a request whose Origin is not
the server's own origin (or one in CODEX_LB_ALLOWED_ORIGINS), or whose Sec-Fetch-Site says another site
sent it, is refused before anything else runs; so is a request to /api or the dashboard addressed to a
host name that is not ours (server/auth/hosts.py: DNS rebinding). State-changing /api/* calls must also
carry JSON (or a multipart upload where a route takes files), which no cross-site form or no-cors fetch
can send.
"""

from __future__ import annotations

import logging

from sanic import Request

from server.auth import hosts
from server.auth.clients import client_address, request_host
from server.errors import ProxyError

log = logging.getLogger(__name__)

GUARDED_PREFIXES = ("/api/", "/v1/", "/backend-api/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_VALUES = frozenset({"same-origin", "none"})
UPLOAD_SUFFIXES = ("/import",)  # routes that take multipart file uploads


def _authority(host: str) -> str:
    """host[:port] without a default port: `Origin: https://x.example` and `Host: x.example:443` agree."""
    return host.removesuffix(":443").removesuffix(":80")


def origin_allowed(request: Request, origin: str) -> bool:
    """The page's host is the one the request was sent to (X-Forwarded-Host from a trusted proxy counts).
    The scheme is not compared: a TLS proxy that is not configured as trusted still forwards plain HTTP,
    and a foreign site cannot share the host name anyway."""
    origin = origin.strip().rstrip("/").lower()
    if origin in request.app.ctx.settings.allowed_origins:
        return True
    scheme, sep, host = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and _authority(host) == _authority(request_host(request))


def check_request(request: Request) -> None:
    """Request middleware: raise for a cross-site browser request; do nothing for everyone else."""
    hosts.check_host(request)
    path = request.path
    if not path.startswith(GUARDED_PREFIXES):
        return
    headers = request.headers
    origin = headers.get("origin")
    if origin is not None:
        if not origin_allowed(request, origin):
            raise _refused(request, f"origin={origin[:100]}")
    else:
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in SAME_SITE_VALUES:
            raise _refused(request, f"sec_fetch_site={site[:30]}")
    if path.startswith("/api/") and request.method not in SAFE_METHODS and _has_body(request):
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type == "application/json":
            return
        if content_type == "multipart/form-data" and path.endswith(UPLOAD_SUFFIXES):
            return
        raise ProxyError(
            "The dashboard API takes JSON: send 'Content-Type: application/json'.",
            status=415,
            type="invalid_request_error",
            code="unsupported_media_type",
        )


def _has_body(request: Request) -> bool:
    """Decided from the headers too, so the check can run before the body is read."""
    if request.body:
        return True
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def _refused(request: Request, why: str) -> ProxyError:
    log.warning(
        "cross-site request refused client=%s method=%s path=%s %s",
        client_address(request),
        request.method,
        request.path,
        why,
    )
    return ProxyError(
        "This request came from a web page on another site and was refused. If that site is yours, add "
        "its origin to CODEX_LB_ALLOWED_ORIGINS.",
        status=403,
        type="invalid_request_error",
        code="cross_site_request",
    )
