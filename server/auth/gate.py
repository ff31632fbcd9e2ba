"""The sign-in rule of the dashboard API: every /api/* route needs a signed-in dashboard user, except
the three that let one sign in; changes, and the reads that show who signs in from where, need the admin
role."""

from __future__ import annotations

from sanic import Request

from server.errors import ProxyError

PUBLIC_ROUTES = frozenset(
    {("GET", "/api/auth/status"), ("POST", "/api/auth/login"), ("POST", "/api/auth/bootstrap")}
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VIEWER_MAY_POST = frozenset({"/api/auth/logout"})
# The audit log and the sessions list name every address and browser that signs in: not for a viewer.
ADMIN_ONLY_READS = frozenset({"/api/audit", "/api/auth/sessions"})


def is_public(request: Request) -> bool:
    """Whether anyone may call this route, signed in or not."""
    return (request.method, request.path.rstrip("/")) in PUBLIC_ROUTES


async def authorize_api(request: Request) -> None:
    """Request middleware for /api/*: raises 401 sign_in_required / proxy_required or 403 read_only /
    admin_only. Decided once per request (request intake asks before the body, the middleware after it),
    so a refusal is logged and audited once."""
    if hasattr(request.ctx, "api_refusal"):
        if request.ctx.api_refusal is not None:
            raise request.ctx.api_refusal
        return
    try:
        await _authorize(request)
    except ProxyError as refused:
        request.ctx.api_refusal = refused
        raise
    request.ctx.api_refusal = None


async def _authorize(request: Request) -> None:
    auth = request.app.ctx.dashboard_auth
    if is_public(request):
        await auth.identify(request)
        return
    # Exports hand out live tokens: an admin's act even though they are reads.
    write = request.method not in SAFE_METHODS or request.path.endswith("/export")
    if request.path in VIEWER_MAY_POST:
        write = False
    await auth.require(request, write=write, admin_only=request.path.rstrip("/") in ADMIN_ONLY_READS)
