"""The backend's side routes: model catalog, `/wham/usage` and audio transcription.
Owns nothing but request parsing and answer shaping; the data comes from catalog and quota."""

from __future__ import annotations

import hashlib
import time

import orjson
from aiohttp import web

from .admission import LOG_ENTRY, STATE, authenticate
from .catalog import catalog_json
from .errors import injected_failure, invalid_request, rate_limit_exceeded
from .quota import quota_of, usage_body


def _log(request: web.Request) -> dict:
    entry = request.app[STATE].log.record(
        request.method, request.path, request.headers, query=request.query, peer=request.remote
    )
    request[LOG_ENTRY] = entry
    return entry


async def list_models(request: web.Request) -> web.Response:
    _log(request)
    account, behaviour = authenticate(request)
    plan = behaviour.plan_type or account.identity.plan_type
    body = catalog_json(plan, request.query.get("client_version"))
    etag = hashlib.sha256(body).hexdigest()[:16]
    return web.Response(body=body, content_type="application/json", headers={"x-models-etag": etag})


async def wham_usage(request: web.Request) -> web.Response:
    _log(request)
    # Deactivated accounts answer 402 here (the proxy reads 402/404 on this route as "deactivated").
    account, behaviour = authenticate(request, deactivated_status=402)
    body = usage_body(account, quota_of(account, behaviour, time.time()))
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def transcribe(request: web.Request) -> web.Response:
    entry = _log(request)
    account, behaviour = authenticate(request)
    # The pool's failure behaviours apply here too, so proxies can show failover on this route.
    if behaviour.rate_limited:
        raise rate_limit_exceeded("gpt-4o-transcribe", behaviour.retry_after_s)
    if account.should_inject_failure(behaviour.failure_rate, behaviour.failure_limit):
        raise injected_failure(behaviour.failure_status, behaviour.failure_body)
    if not request.content_type.startswith("multipart/"):
        raise invalid_request("Expected a multipart/form-data body with a 'file' part.", "file")
    reader = await request.multipart()
    fields: dict[str, object] = {}
    audio: tuple[str, int] | None = None
    while (part := await reader.next()) is not None:
        data = await part.read()  # type: ignore[union-attr]
        if part.name == "file":  # type: ignore[union-attr]
            audio = (part.filename or "audio", len(data))  # type: ignore[union-attr]
        else:
            fields[part.name or ""] = data.decode(errors="replace")  # type: ignore[union-attr]
    entry["body"] = {"fields": fields, "file": {"filename": audio[0], "bytes": audio[1]} if audio else None}
    if audio is None:
        raise invalid_request(
            "Missing required multipart part: 'file'.", "file", "missing_required_parameter"
        )
    return web.json_response({"text": f"Fake transcription of {audio[1]} bytes from {audio[0]}."})


async def exit_address(request: web.Request) -> web.Response:
    """What an address-echo service (api.ipify.org) answers: the address the request arrived from."""
    _log(request)
    return web.json_response({"ip": request.remote})
