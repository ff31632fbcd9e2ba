"""Model catalog routes: OpenAI's `GET /v1/models` and the Codex backend's `GET /backend-api/codex/models`.
Both read the worker's in-memory registry (synced from upstream, bundled until the first sync)."""

from __future__ import annotations

import hashlib

import orjson
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from server.auth.guard import authorize_proxy
from server.errors import ProxyError

bp = Blueprint("models")


@bp.get("/v1/models")
async def openai_models(request: Request):
    authorize_proxy(request)
    catalog = request.app.ctx.proxy.models.current
    if "client_version" in request.args:  # the Codex CLI pointed at /v1 asks for its own shape
        return _codex_answer(catalog.codex_models(request.args.get("client_version")))
    return _json({"object": "list", "data": catalog.openai_models()})


@bp.get("/v1/models/<model_id:path>")
async def openai_model(request: Request, model_id: str):
    authorize_proxy(request)
    model = request.app.ctx.proxy.models.current.openai_model(model_id)
    if model is None:
        raise ProxyError(
            f"The model `{model_id}` does not exist or you do not have access to it.",
            status=404,
            code="model_not_found",
            param="model",
        )
    return _json(model)


@bp.get("/backend-api/codex/models")
async def codex_models(request: Request):
    authorize_proxy(request)
    catalog = request.app.ctx.proxy.models.current
    return _codex_answer(catalog.codex_models(request.args.get("client_version")))


def _codex_answer(models: list[dict]) -> HTTPResponse:
    body = orjson.dumps({"models": models})
    # The CLI caches the catalog by this tag (it also arrives on responses from the backend).
    etag = hashlib.blake2b(body, digest_size=8).hexdigest()
    return raw(body, content_type="application/json", headers={"x-models-etag": etag})


def _json(payload: dict) -> HTTPResponse:
    return raw(orjson.dumps(payload), content_type="application/json")
