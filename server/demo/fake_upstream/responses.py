"""`POST /backend-api/codex/responses` (SSE) and `POST /backend-api/codex/responses/compact` (JSON).
Owns SSE framing: `event: <type>` plus one compact JSON `data:` line per event."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from .admission import LOG_ENTRY, STATE, admit, authenticate, settle
from .bodies import read_body
from .errors import previous_response_not_found
from .playback import play
from .quota import consume
from .turns import COMPACTION_OUTPUT_TOKENS, TurnContext, estimate_input_tokens, new_id, plan_turn
from .validation import check_compact_body, check_responses_body, parse_json_object

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_prefixes: dict[str, bytes] = {}


def encode_sse(event: dict) -> bytes:
    kind = event["type"]
    prefix = _prefixes.get(kind)
    if prefix is None:
        prefix = _prefixes[kind] = f"event: {kind}\ndata: ".encode()
    return prefix + orjson.dumps(event) + b"\n\n"


def _log(request: web.Request) -> dict:
    entry = request.app[STATE].log.record(
        request.method, request.path, request.headers, query=request.query, peer=request.remote
    )
    request[LOG_ENTRY] = entry
    return entry


async def create_response(request: web.Request) -> web.StreamResponse:
    entry = _log(request)
    account, behaviour = authenticate(request)
    account.stats.requests += 1
    account.stats.transports["http"] += 1
    body = entry["body"] = parse_json_object(await read_body(request))
    check_responses_body(body)
    if body.get("previous_response_id"):
        # With store=false a response lives only on the WebSocket that produced it; HTTP never finds one.
        raise previous_response_not_found(str(body["previous_response_id"]))
    quota = admit(account, behaviour, body["model"], time.time())
    key = body.get("prompt_cache_key")
    turn = plan_turn(
        body,
        TurnContext(
            account.account_id,
            behaviour,
            quota,
            cached_prefix=account.cached_prefix(key) if isinstance(key, str) else 0,
        ),
    )
    settle(account, behaviour, key, turn, body["model"])
    if behaviour.ttfb_ms:
        await asyncio.sleep(behaviour.ttfb_ms / 1000)
    response = web.StreamResponse(headers=SSE_HEADERS)
    if behaviour.set_cookie:
        response.headers["Set-Cookie"] = f"__cf_bm=edge-{account.account_id}; Path=/; HttpOnly"
    account.stream_started()
    try:
        await response.prepare(request)

        if behaviour.malformed_sse:
            await response.write(MALFORMED_SSE)

        async def send(events: list[dict]) -> None:
            await response.write(b"".join(map(encode_sse, events)))

        if not await play(turn, behaviour, send):
            # Cut stream: flush what was written, then drop the connection without a terminal event.
            request.transport.close()
            raise asyncio.CancelledError
        await response.write_eof()
    except ConnectionResetError:
        # The client gave up (a proxy's first-byte timeout) while we slept: a hang-up, not a fake's bug.
        # A traceback here would also be formatted on this thread while the tests' thread compiles
        # routes, which Python 3.11's ast module does not survive ("AST constructor recursion depth").
        raise asyncio.CancelledError from None
    finally:
        account.stream_ended()
    return response


MALFORMED_SSE = (
    b"event: response.output_text.delta\ndata: {not json\n\n"
    b"event: mystery\n\n"
    b"\r\n"
    b": a comment\n\n"
    b"data: \xff\xfe\x00 not utf-8\n\n"
)


async def compact(request: web.Request) -> web.Response:
    entry = _log(request)
    account, behaviour = authenticate(request)
    account.stats.requests += 1
    account.stats.transports["http"] += 1
    body = entry["body"] = parse_json_object(await read_body(request))
    check_compact_body(body)
    admit(account, behaviour, body["model"], time.time())
    input_tokens = estimate_input_tokens(body)
    consume(account, behaviour, input_tokens + COMPACTION_OUTPUT_TOKENS, time.time())
    account.stats.tokens_in += input_tokens
    account.stats.tokens_out += COMPACTION_OUTPUT_TOKENS
    item = {
        "id": new_id("cmp"),
        "type": "compaction",
        "encrypted_content": "gAAAAB" + new_id("compacted").encode().hex(),
    }
    answer = {
        "id": new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [item],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": COMPACTION_OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + COMPACTION_OUTPUT_TOKENS,
        },
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")
