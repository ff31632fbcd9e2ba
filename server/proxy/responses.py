"""Routes of the Responses API: the Codex CLI's /backend-api/codex/* and the SDKs' /v1/responses."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

import orjson
from sanic import Blueprint, Request
from sanic.response import raw

from server.auth.guard import authorize_proxy
from server.errors import ProxyError
from server.keys.store import KeyRecord
from server.proxy import keepalive, normalize, pipeline, pool_usage, transport
from server.proxy.bodies import decoded_body
from server.proxy.delivery import collect_response, failed_event, json_answer, stream_to_client
from server.proxy.failover import Failover
from server.proxy.outcome import Outcome
from server.proxy.settlement import Settlement
from server.proxy.socket_turns import open_over_socket
from server.proxy.trace import JsonAnswer, OpenedStream
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
    done = Settlement.http(
        request,
        key,
        model=norm.model,
        reasoning_effort=norm.reasoning_effort,
        session_key=norm.session_key,
        report=keepalive.reporter(request, _failed_event),
    )
    return await pipeline.serve(done, key, _Responses(request, norm, key))


class _Responses:
    """A Responses request's steps: streamed back as SSE, or collected into one JSON answer."""

    __slots__ = ("request", "norm", "key")
    checks_model = True

    def __init__(self, request: Request, norm: normalize.NormalizedRequest, key: KeyRecord | None) -> None:
        self.request, self.norm, self.key = request, norm, key

    def prepare(self, done: Settlement) -> int:
        return len(self.norm.body)

    def keepalive(self):
        request = self.request
        return keepalive.while_opening(
            request, self.norm.client_stream, request.app.ctx.settings.stream_keepalive_s
        )

    async def open(self, done: Settlement, model_plans) -> OpenedStream:
        """The request's upstream stream: on a pooled upstream socket when the transport choice says so
        and one can be had, else over HTTP."""
        request, norm, key = self.request, self.norm, self.key
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

    async def deliver(self, done: Settlement, opened: OpenedStream):
        request, key = self.request, self.key
        trace = done.trace
        ctx = request.app.ctx.proxy
        trace.rate_limit_view = pool_usage.view_for(
            ctx, key, key.allowed_accounts if key else None, time.time()
        )
        if self.norm.client_stream:
            done.outcome = Outcome()
            fill = request.path.startswith("/v1/")  # SDK clients; the Codex CLI gets the backend's bytes
            await stream_to_client(request, opened, trace, done.request_id, done.outcome, fill)
            return None  # already sent through request.respond()
        done.outcome, body = await collect_response(opened, trace)
        return json_answer(opened, trace, done.request_id, done.outcome, body)


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
    done = Settlement.http(
        request, key, model=model, reasoning_effort=_effort(payload), session_key=session_key
    )
    return await pipeline.serve(done, key, _Compact(request, key, orjson.dumps(payload)))


class _Compact:
    """A compaction's steps: one JSON call upstream, its answer passed back as it came."""

    __slots__ = ("request", "key", "body")
    checks_model = True

    def __init__(self, request: Request, key: KeyRecord | None, body: bytes) -> None:
        self.request, self.key, self.body = request, key, body

    def prepare(self, done: Settlement) -> int:
        return len(self.body)

    def keepalive(self):
        return nullcontext()  # a JSON client waits for its one answer

    async def open(self, done: Settlement, model_plans) -> JsonAnswer:
        ctx, key = self.request.app.ctx.proxy, self.key
        failover = Failover(
            ctx, done.trace, done.session_key, key.allowed_accounts if key else None, model_plans
        )
        return await failover.post(
            ctx.upstream.compact_url, self.body, headers.forwardable(self.request.headers)
        )

    async def deliver(self, done: Settlement, answer: JsonAnswer):
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
