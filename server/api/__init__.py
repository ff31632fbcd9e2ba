"""The dashboard's JSON API (/api/*): thin handlers over the modules that own the data."""

from sanic import Request, Sanic

from server.api import accounts, api_keys, audit, auth, proxies, settings, usage
from server.auth.gate import authorize_api
from server.proxy.pool_usage import CODEX_USAGE_PATH

BLUEPRINTS = (accounts.bp, settings.bp, api_keys.bp, auth.bp, audit.bp, usage.bp, proxies.bp)


def install(app: Sanic) -> None:
    for bp in BLUEPRINTS:
        app.blueprint(bp, url_prefix="/api")

    @app.on_request
    async def dashboard_api_needs_sign_in(request: Request) -> None:
        if request.path.startswith("/api/") and request.path.rstrip("/") != CODEX_USAGE_PATH:
            await authorize_api(request)
