"""Delivers an opened upstream stream to an HTTP client of the Responses routes.

SSE clients get the upstream bytes unchanged, chunk by chunk, as they arrive; only terminal events
are decoded. Non-streaming clients get one Response JSON. The request is settled by its Settlement
(server.proxy.settlement) with what the stream's Outcome says.
"""

from __future__ import annotations

import time

import orjson
from sanic import Request
from sanic.response import json

from server.errors import StreamIncomplete, UpstreamFailed
from server.proxy import keepalive
from server.proxy.assemble import OutputFiller, ResponseAssembler
from server.proxy.outcome import Outcome, drain
from server.proxy.trace import OpenedStream, Trace
from server.upstream.events import incomplete, response_failed
from server.upstream.sse import SSEEvent, encode_event

# Upstream answer headers the client may see (turn state, model, the account's windows for the CLI's
# status line).
_PASSED_BACK = ("x-codex-turn-state", "openai-model", "x-models-etag", "x-reasoning-included")
_PASSED_BACK_PREFIXES = ("x-codex-primary-", "x-codex-secondary-", "x-codex-credits-")


def response_headers(opened: OpenedStream, trace: Trace, request_id: str) -> dict[str, str]:
    upstream = opened.stream.headers
    out = {name: upstream[name] for name in _PASSED_BACK if name in upstream}
    for name, value in upstream.items():
        if name.lower().startswith(_PASSED_BACK_PREFIXES):
            out[name.lower()] = value
    if trace.rate_limit_view is not None:  # the pool's windows (or none) instead of this account's
        out = {k: v for k, v in out.items() if not k.startswith(_PASSED_BACK_PREFIXES)}
        out.update(trace.rate_limit_view)
    out["x-request-id"] = request_id
    out["x-codex-lb-account"] = str(opened.account.id)
    out["x-codex-lb-attempts"] = str(trace.attempts)
    return out


async def stream_to_client(
    request: Request,
    opened: OpenedStream,
    trace: Trace,
    request_id: str,
    outcome: Outcome,
    fill_output: bool = False,
) -> None:
    """Send the stream; `outcome` is filled in as it goes, so a client that hangs up right after the
    terminal event still has its request settled as a success. `fill_output` (/v1 clients): the terminal
    event carries the stream's output items, sent event by event instead of chunk by chunk."""
    headers = response_headers(opened, trace, request_id)
    trace.head_sent_mono = time.monotonic()
    headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    headers["cache-control"] = "no-cache"
    client = await keepalive.respond(request, headers)
    if fill_output:
        filler = OutputFiller()

        async def send(chunk: bytes, events: list[SSEEvent]) -> None:
            if events:  # whole events only: a partial one stays in the scanner until its end arrives
                await client.send(filler.sse(events))
    else:

        async def send(chunk: bytes, events: list[SSEEvent]) -> None:
            await client.send(chunk)

    if not await drain(opened, outcome, send):
        # The upstream went away after content reached the client: end with a proper failure event.
        await client.send(encode_event(incomplete(outcome.response_id, outcome.error_code, 0)))
    await client.eof()


async def collect_response(opened: OpenedStream, trace: Trace) -> tuple[Outcome, dict | None]:
    outcome = Outcome()
    assembler = ResponseAssembler()

    async def add(chunk: bytes, events: list[SSEEvent]) -> None:
        for event in events:
            assembler.add(event)

    await drain(opened, outcome, add)
    trace.head_sent_mono = time.monotonic()
    return outcome, assembler.response()


def json_answer(opened: OpenedStream, trace: Trace, request_id: str, outcome: Outcome, body: dict | None):
    headers = response_headers(opened, trace, request_id)
    headers["x-codex-lb-overhead-ms"] = f"{trace.overhead_ms():.2f}"
    if not outcome.terminal_seen or body is None:
        raise StreamIncomplete(headers=headers)
    if body.get("status") == "failed":
        error = body.get("error") or {}
        raise UpstreamFailed(
            str(error.get("message") or "The response failed upstream."),
            code=str(error.get("code") or "response_failed"),
            headers=headers,
        )
    return json(body, headers=headers, dumps=orjson.dumps)


def failed_event(response_id: str, code: str, message: str) -> bytes:
    """A `response.failed` SSE event: how a stream whose head has gone out reports an error."""
    return encode_event(response_failed(response_id, code, message, 0))
