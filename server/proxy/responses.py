"""Routes of the Responses API: the Codex CLI's /backend-api/codex/* and the SDKs' /v1/responses."""

from __future__ import annotations

import logging
import time

import orjson
from sanic import Blueprint, Request
from sanic.response import raw

from server.auth.guard import authorize_proxy
from server.errors import ProxyError
from server.keys.admission import admit
from server.keys.store import KeyRecord
from server.proxy import keepalive, normalize, pool_usage, transport
from server.proxy.bodies import decoded_body
from server.proxy.delivery import collect_response, failed_event, json_answer, stream_to_client
from server.proxy.failover import Failover
from server.proxy.outcome import Outcome
from server.proxy.settlement import Settlement
from server.proxy.socket_turns import open_over_socket
from server.proxy.trace import OpenedStream
from server.upstream import headers
from server.usage.tokens import TokenUsage

log = logging.getLogger(__name__)
bp = Blueprint("responses")


@bp.post("/backend-api/codex/responses")
async def codex_responses(request: Request):
    key = authorize_proxy(request)
    body = decoded_body(request, request.app.ctx.settings.request_max_bytes)
    return await _serve(request, normalize.normalize_codex(body, request.headers), key)


@bp.post("/v1/responses")
async def openai_responses(request: Request):
    key = authorize_proxy(request)
    body = decoded_body(request, request.app.ctx.settings.request_max_bytes)
    scope = normalize.cache_scope(key.id if key else None, request.remote_addr or request.ip)
    return await _serve(request, normalize.normalize_openai(body, request.headers, scope), key)


@bp.post("/backend-api/codex/responses/compact")
@bp.post("/v1/responses/compact", name="openai_compact")
async def compact(request: Request):
    key = authorize_proxy(request)
    return await _compact(request, key)


async def _serve(request: Request, norm: normalize.NormalizedRequest, key: KeyRecord | None):
    ctx = request.app.ctx.proxy
    async with Settlement.http(
        request,
        key,
        model=norm.model,
        reasoning_effort=norm.reasoning_effort,
        session_key=norm.session_key,
        report=keepalive.reporter(request, _failed_event),
    ) as done:
        trace, request_id = done.trace, done.request_id
        model_plans = ctx.models.current.require(norm.model)  # unknown: 404 before any account is used
        done.admission = await admit(ctx, key, request_id, norm.model, norm.reasoning_effort, len(norm.body))
        async with keepalive.while_opening(request, norm.client_stream, ctx.settings.stream_keepalive_s):
            done.opened = await _open(request, norm, key, done, model_plans)
        trace.rate_limit_view = pool_usage.view_for(
            ctx, key, key.allowed_accounts if key else None, time.time()
        )
        if norm.client_stream:
            done.outcome = Outcome()
            fill = request.path.startswith("/v1/")  # SDK clients; the Codex CLI gets the backend's bytes
            await stream_to_client(request, done.opened, trace, request_id, done.outcome, fill)
            return None  # already sent through request.respond()
        done.outcome, body = await collect_response(done.opened, trace)
        return json_answer(done.opened, trace, request_id, done.outcome, body)
    return None  # the error ended the stream whose head had gone out early


async def _open(
    request: Request, norm: normalize.NormalizedRequest, key: KeyRecord | None, done: Settlement, model_plans
) -> OpenedStream:
    """The request's upstream stream: on a pooled upstream socket when the transport choice says so and
    one can be had, else over HTTP."""
    ctx = request.app.ctx.proxy
    allowed_accounts = key.allowed_accounts if key else None
    forwarded = headers.forwardable(request.headers)
    choice = ctx.transports.choose(
        ctx.runtime.current.upstream_stream_transport,
        client_websocket=False,
        model=norm.model,
        model_prefers=ctx.models.current.prefers_websockets(norm.model),
        conversation=norm.client_session,
    )
    if choice == transport.WEBSOCKET:
        opened = await open_over_socket(ctx, norm, forwarded, done.trace, allowed_accounts, model_plans)
        if opened is not None:
            done.upstream_transport = transport.WEBSOCKET
            return opened
    done.upstream_transport = transport.HTTP
    failover = Failover(ctx, done.trace, norm.session_key, allowed_accounts, model_plans)
    return await failover.open_stream(ctx.upstream.responses_url, norm.body, forwarded)


def _failed_event(exc: ProxyError) -> bytes:
    return failed_event("", exc.code or "upstream_error", exc.message)


async def _compact(request: Request, key: KeyRecord | None):
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
    async with Settlement.http(
        request, key, model=model, reasoning_effort=_effort(payload), session_key=session_key
    ) as done:
        model_plans = ctx.models.current.require(model)
        body = orjson.dumps(payload)
        done.admission = await admit(ctx, key, done.request_id, model, done.reasoning_effort, len(body))
        failover = Failover(ctx, done.trace, session_key, key.allowed_accounts if key else None, model_plans)
        answer = await failover.post(ctx.upstream.compact_url, body, headers.forwardable(request.headers))
        done.status, done.error_code = answer.status, ""
        done.outcome = _compact_outcome(answer.body)
        return raw(
            answer.body,
            status=answer.status,
            content_type="application/json",
            headers={
                "x-request-id": done.request_id,
                "x-codex-lb-account": str(answer.account.id),
                "x-codex-lb-attempts": str(done.trace.attempts),
            },
        )


def _compact_outcome(body: bytes) -> Outcome:
    """The compaction answer's usage, so the request log and key limits count it."""
    outcome = Outcome()
    try:
        outcome.usage = TokenUsage.from_response(orjson.loads(body))
    except orjson.JSONDecodeError:
        pass
    return outcome


def _effort(payload: dict) -> str:
    reasoning = payload.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else ""
