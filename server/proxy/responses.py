"""Routes of the Responses API: the Codex CLI's /backend-api/codex/* and the SDKs' /v1/responses."""

from __future__ import annotations

import orjson
from sanic import Blueprint, Request
from sanic.response import raw

from server.auth.firewall import require_local
from server.errors import ProxyError
from server.proxy import normalize
from server.proxy.bodies import decoded_body
from server.proxy.delivery import Outcome, collect_response, json_answer, settle, stream_to_client
from server.proxy.failover import Trace, open_stream, post_json
from server.upstream import headers
from server.usage.records import new_request_id

bp = Blueprint("responses")


@bp.post("/backend-api/codex/responses")
async def codex_responses(request: Request):
    require_local(request, "The proxy")
    body = decoded_body(request, request.app.ctx.settings.request_max_bytes)
    return await _serve(request, normalize.normalize_codex(body, request.headers))


@bp.post("/v1/responses")
async def openai_responses(request: Request):
    require_local(request, "The proxy")
    body = decoded_body(request, request.app.ctx.settings.request_max_bytes)
    return await _serve(request, normalize.normalize_openai(body, request.headers))


@bp.post("/backend-api/codex/responses/compact")
@bp.post("/v1/responses/compact", name="openai_compact")
async def compact(request: Request):
    require_local(request, "The proxy")
    return await _compact(request)


async def _serve(request: Request, norm: normalize.NormalizedRequest):
    ctx = request.app.ctx.proxy
    trace, request_id = Trace(), new_request_id()
    opened = outcome = None
    status, error_code = 499, "client_disconnected"
    try:
        model_plans = ctx.models.current.require(norm.model)  # unknown: 404 before any account is used
        opened = await open_stream(
            ctx,
            ctx.upstream.responses_url,
            norm.body,
            headers.forwardable(request.headers),
            norm.session_key,
            trace,
            model_plans,
        )
        if norm.client_stream:
            outcome = Outcome()
            await stream_to_client(request, opened, trace, request_id, outcome)
            status, error_code = outcome.status, outcome.error_code
            return None  # already sent through request.respond()
        outcome, body = await collect_response(opened, trace)
        status, error_code = outcome.status, outcome.error_code
        return json_answer(opened, trace, request_id, outcome, body)
    except ProxyError as exc:
        status, error_code = exc.status, exc.code or ""
        exc.headers.setdefault("x-request-id", request_id)
        raise
    finally:
        if outcome is not None and outcome.terminal_seen:
            status, error_code = outcome.status, outcome.error_code
        settle(
            ctx,
            request_id=request_id,
            route=request.path,
            transport="http",
            model=norm.model,
            reasoning_effort=norm.reasoning_effort,
            session_key=norm.session_key,
            trace=trace,
            opened=opened,
            outcome=outcome,
            status=status,
            error_code=error_code,
        )


async def _compact(request: Request):
    ctx = request.app.ctx.proxy
    payload = normalize.parse_json_object(decoded_body(request, ctx.settings.request_max_bytes))
    model = payload.get("model") if isinstance(payload.get("model"), str) else ""
    if not model:
        raise ProxyError(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    for name in normalize.UNSUPPORTED + ("store", "stream"):
        payload.pop(name, None)
    session_key = normalize.session_key_of(request.headers, payload)
    trace, request_id = Trace(), new_request_id()
    status, error_code = 499, "client_disconnected"
    try:
        model_plans = ctx.models.current.require(model)
        answer = await post_json(
            ctx,
            ctx.upstream.compact_url,
            orjson.dumps(payload),
            headers.forwardable(request.headers),
            session_key,
            trace,
            model_plans,
        )
        status = answer.status
        return raw(
            answer.body,
            status=answer.status,
            content_type="application/json",
            headers={
                "x-request-id": request_id,
                "x-codex-lb-account": f"slot-{answer.account.slot}",
                "x-codex-lb-attempts": str(trace.attempts),
            },
        )
    except ProxyError as exc:
        status, error_code = exc.status, exc.code or ""
        raise
    finally:
        settle(
            ctx,
            request_id=request_id,
            route=request.path,
            transport="http",
            model=model,
            reasoning_effort="",
            session_key=session_key,
            trace=trace,
            opened=None,
            outcome=None,
            status=status,
            error_code=error_code,
        )
