"""An OpenAPI description of the dashboard API (/api/*) at /api/openapi.json, for API clients and
schema-driven tests; each route's answer comes from server/api/answers.py. Only sanic-ext's OpenAPI
extension is loaded, on purpose: Sanic would otherwise load all of sanic-ext for every app (AUTO_EXTEND),
whose automatic HEAD/OPTIONS routes rebuild the router each time, which made a server start (and the
test suite) several times slower."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from sanic import Sanic
from sanic_ext import Extend
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.extension import OpenAPIExtension

from server.api.answers import ANSWERS

PREFIX = "/api"
SPEC_PATH = "/api/openapi.json"


class _JsonOnly(OpenAPIExtension):
    name = "apidescription"  # sanic-ext refuses a second extension named "openapi"

    def label(self) -> str:
        # The stock label links the UI page, which we do not serve (and it fails without one).
        return SPEC_PATH


def install(app: Sanic) -> None:
    @app.before_server_start  # priority 0: before sanic-ext builds the description (priority -1000)
    async def describe_only_the_api(app: Sanic) -> None:
        for route in app.router.routes:
            if not ("/" + route.path.lstrip("/")).startswith(PREFIX + "/"):
                openapi.exclude()(route.handler)
            elif answer := ANSWERS.get(handler_name(route)):
                content = {answer.media_type: {"schema": answer.schema}} if answer.schema is not None else {}
                openapi.response(answer.status, content, "Success")(route.handler)

    app.config.update(
        OAS=True,
        # sanic-ext leaves every route under its prefix out of the description: make the prefix the
        # JSON's own path, or /api/* itself would vanish.
        OAS_URL_PREFIX=SPEC_PATH,
        OAS_URI_TO_JSON="",
        OAS_UI_REDOC=False,  # both UIs load their scripts from a CDN; the JSON is what clients use
        OAS_UI_SWAGGER=False,
        OAS_UI_DEFAULT=None,
        OAS_AUTODOC=True,
        OAS_IGNORE_HEAD=True,
        OAS_IGNORE_OPTIONS=True,
        API_TITLE="codex-lb dashboard API",
        API_VERSION=_version(),
        API_DESCRIPTION="The JSON API behind the dashboard and the codex-lb command: accounts, API keys, "
        "settings. Local requests only.",
    )
    Extend(app, extensions=[_JsonOnly], built_in_extensions=False)


def handler_name(route) -> str:
    """blueprint.function, as the route's name without the app's."""
    return route.name.split(".", 1)[1]


def _version() -> str:
    try:
        return version("codex-lb")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "dev"
