"""The sign-in rule of the dashboard API: every /api/* route needs a signed-in dashboard user, except
the three that let one sign in; changes need the admin role."""

from __future__ import annotations

from sanic import Request

PUBLIC_ROUTES = frozenset(
    {("GET", "/api/auth/status"), ("POST", "/api/auth/login"), ("POST", "/api/auth/bootstrap")}
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VIEWER_MAY_POST = frozenset({"/api/auth/logout"})


def is_public(request: Request) -> bool:
    """Whether anyone may call this route, signed in or not."""
    return (request.method, request.path.rstrip("/")) in PUBLIC_ROUTES


async def authorize_api(request: Request) -> None:
    """Request middleware for /api/*: raises 401 sign_in_required / proxy_required or 403 read_only."""
    auth = request.app.ctx.dashboard_auth
    if is_public(request):
        await auth.identify(request)
        return
    # Exports hand out live tokens: an admin's act even though they are reads.
    write = request.method not in SAFE_METHODS or request.path.endswith("/export")
    if request.path in VIEWER_MAY_POST:
        write = False
    await auth.require(request, write=write)
