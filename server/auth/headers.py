"""Security headers for the dashboard's pages and /api: no framing, no sniffing, no referrer, a
Content-Security-Policy the built Vue dashboard satisfies (its own scripts only; inline styles allowed
because Vue binds style attributes), and over HTTPS (direct, or through a trusted TLS proxy) HSTS, so a
browser never again sends the session cookie's site over plain HTTP."""

from __future__ import annotations

from sanic import Request
from sanic.response import BaseHTTPResponse

from server.auth.clients import request_scheme

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
# A year, without includeSubDomains: other sites of the same domain may still be served over HTTP.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"
PROXY_PREFIXES = ("/v1/", "/backend-api/")


def add_security_headers(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware for everything but the proxy routes (their clients are not browsers)."""
    if request.path.startswith(PROXY_PREFIXES):
        return
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request_scheme(request) == "https":
        response.headers.setdefault("strict-transport-security", STRICT_TRANSPORT_SECURITY)
    if request.path.startswith("/api/"):
        response.headers.setdefault("cache-control", "no-store")
