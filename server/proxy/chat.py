"""The Chat Completions route (`POST /v1/chat/completions`): a facade over the Responses backend.
The request is translated by chat_request, the stream by chat_stream; account choice, failover and
settlement are the Responses route's own (pipeline.serve)."""

from __future__ import annotations

import time

import orjson
from sanic import Blueprint, Request
from sanic.response import raw

from server.auth.guard import authorize_proxy
from server.errors import ProxyError, UpstreamFailed
from server.keys.store import KeyRecord
from server.proxy import chat_request, keepalive, normalize, pipeline
from server.proxy.bodies import decoded_body
from server.proxy.chat_stream import ChatTranslator
from server.proxy.delivery import response_headers
from server.proxy.failover import Failover
from server.proxy.outcome import Outcome, drain
from server.proxy.settlement import Settlement
from server.proxy.trace import OpenedStream, Trace
from server.upstream import headers
from server.upstream.sse import SSEEvent

bp = Blueprint("chat")
ROUTE = "/v1/chat/completions"


@bp.post(ROUTE)
async def chat_completions(request: Request):
    key = authorize_proxy(request)
    ctx = request.app.ctx.proxy
    scope = normalize.cache_scope(key.id if key else None, request.remote_addr or request.ip)
    raw_body = decoded_body(request, ctx.settings.request_max_bytes)
    chat = chat_request.translate(raw_body, request.headers, scope)
    translator = ChatTranslator(
        chat.model,
        streaming=chat.stream,
        include_usage=chat.include_usage,
        include_reasoning=chat.include_reasoning,
    )
    done = Settlement.http(
        request,
        key,
        route=ROUTE,
        model=chat.model,
        reasoning_effort=chat.reasoning_effort,
        session_key=chat.session_key,
        report=keepalive.reporter(request, _error_chunk),
    )
    return await pipeline.serve(done, key, _Chat(request, key, chat, translator))


class _Chat:
    """A chat completion's steps: a Responses stream, translated as it arrives (or collected)."""

    __slots__ = ("request", "key", "chat", "translator")
    checks_model = True

    def __init__(
        self,
        request: Request,
        key: KeyRecord | None,
        chat: chat_request.ChatRequest,
        translator: ChatTranslator,
    ) -> None:
        self.request, self.key, self.chat, self.translator = request, key, chat, translator

    def prepare(self, done: Settlement) -> int:
        return len(self.chat.body)

    def keepalive(self):
        request = self.request
        return keepalive.while_opening(request, self.chat.stream, request.app.ctx.settings.stream_keepalive_s)

    async def open(self, done: Settlement, model_plans) -> OpenedStream:
        request, key, chat = self.request, self.key, self.chat
        ctx = request.app.ctx.proxy
        failover = Failover(
            ctx, done.trace, chat.session_key, key.allowed_accounts if key else None, model_plans
        )
        return await failover.open_stream(
            ctx.upstream.responses_url, chat.body, headers.forwardable(request.headers)
        )

    async def deliver(self, done: Settlement, opened: OpenedStream):
        done.outcome = outcome = Outcome()
        if self.chat.stream:
            await _stream(self.request, opened, done.trace, done.request_id, outcome, self.translator)
            return None  # already sent through request.respond()
        await _collect(opened, outcome, self.translator)
        return _completion(opened, done.trace, done.request_id, self.translator)


def _error_chunk(exc: ProxyError) -> bytes:
    """The OpenAI SDKs raise an APIError for a chunk that carries "error"."""
    return b"data: " + orjson.dumps(exc.body()) + b"\n\n"


async def _stream(
    request: Request,
    opened: OpenedStream,
    trace: Trace,
    request_id: str,
    outcome: Outcome,
    translator: ChatTranslator,
) -> None:
    """Translate event by event as the upstream bytes arrive; nothing is held back."""
    answer_headers = response_headers(opened, trace, request_id)
    trace.head_sent_mono = time.monotonic()
    answer_headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    answer_headers["cache-control"] = "no-cache"
    client = await keepalive.respond(request, answer_headers)

    async def send(chunk: bytes, events: list[SSEEvent]) -> None:
        out = [piece for event in events for piece in translator.feed(event)]
        if out:
            await client.send(b"".join(out))

    if not await drain(opened, outcome, send):
        await client.send(b"".join(translator.truncated()))
    await client.eof()


async def _collect(opened: OpenedStream, outcome: Outcome, translator: ChatTranslator) -> None:
    async def feed(chunk: bytes, events: list[SSEEvent]) -> None:
        for event in events:
            translator.feed(event)

    if not await drain(opened, outcome, feed):
        translator.truncated()


def _completion(opened: OpenedStream, trace: Trace, request_id: str, translator: ChatTranslator):
    answer_headers = response_headers(opened, trace, request_id)
    trace.head_sent_mono = time.monotonic()
    answer_headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    if translator.error is not None:
        error = translator.error
        raise UpstreamFailed(error["message"], code=error["code"], headers=answer_headers)
    return raw(orjson.dumps(translator.completion()), content_type="application/json", headers=answer_headers)
