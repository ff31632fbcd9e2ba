"""The dashboard's JSON API (/api/*): thin handlers over the modules that own the data."""

from sanic import Request, Sanic

from server.api import accounts, api_keys, settings
from server.auth.firewall import require_local

BLUEPRINTS = (accounts.bp, settings.bp, api_keys.bp)


def install(app: Sanic) -> None:
    for bp in BLUEPRINTS:
        app.blueprint(bp, url_prefix="/api")

    @app.on_request
    async def dashboard_api_is_local_only(request: Request) -> None:
        if request.path.startswith("/api/"):
            require_local(request, "The dashboard API")
