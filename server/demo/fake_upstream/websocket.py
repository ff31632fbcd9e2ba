"""`GET /backend-api/codex/responses` as a WebSocket: `response.create` frames in, event frames out.
Owns per-connection state: response ids (previous_response_id resolves only on its own socket), turns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import WSMsgType, web

from .accounts import Account
from .admission import LOG_ENTRY, STATE, admit, authenticate, settle
from .behaviour import Behaviour
from .errors import (
    Rejection,
    invalid_request,
    previous_response_not_found,
    stream_error_status,
    usage_limit_reached,
)
from .playback import play
from .quota import quota_of, rate_limit_headers, rate_limits_event
from .turns import TurnContext, plan_turn
from .validation import check_responses_body, parse_json_object

BETA_TOKEN = "responses_websockets=2026-02-06"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
CONNECTION_LIMIT_MESSAGE = (
    "Responses websocket connection limit reached (60 minutes). "
    "Create a new websocket connection to continue."
)


@dataclass(slots=True)
class Connection:
    account: Account
    handshake_headers: dict
    responses: dict[str, int] = field(default_factory=dict)  # response id -> context tokens
    turns: int = 0


async def _send(ws: web.WebSocketResponse, event: dict) -> None:
    await ws.send_frame(orjson.dumps(event), WSMsgType.TEXT)


async def _send_error(
    ws: web.WebSocketResponse,
    conn: Connection,
    behaviour: Behaviour,
    rejection: Rejection,
    entry: dict | None = None,
) -> None:
    quota = quota_of(conn.account, behaviour, time.time())
    conn.account.stats.statuses[rejection.status] += 1
    if entry is not None:
        entry["status"] = rejection.status
    await _send(
        ws,
        {
            "type": "error",
            "status": rejection.status,
            "error": rejection.error,
            "headers": rate_limit_headers(quota),
        },
    )


async def responses_websocket(request: web.Request) -> web.WebSocketResponse:
    state = request.app[STATE]
    request[LOG_ENTRY] = state.log.record(
        request.method,
        request.path,
        request.headers,
        query=request.query,
        transport="websocket",
        kind="handshake",
        peer=request.remote,
    )
    account, behaviour = authenticate(request)
    if BETA_TOKEN not in request.headers.get("OpenAI-Beta", ""):
        raise invalid_request(
            f"WebSocket connections require the OpenAI-Beta header {BETA_TOKEN}.",
            "OpenAI-Beta",
            "missing_beta_header",
        )
    if behaviour.ws_reject_upgrade:
        raise Rejection(
            426,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "upgrade_required",
                    "message": "WebSocket transport is not available; use HTTP.",
                    "param": None,
                }
            },
        )
    quota = quota_of(account, behaviour, time.time())
    if quota.exhausted_window is not None:
        raise usage_limit_reached(quota)
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True)
    await ws.prepare(request)
    account.stats.ws_connections += 1
    conn = Connection(account, request[LOG_ENTRY]["headers"])
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                if not await _on_text(request, ws, conn, message.data):
                    break
            elif message.type == WSMsgType.BINARY:
                await _send_error(
                    ws,
                    conn,
                    state.book.of(account.account_id),
                    invalid_request("Binary frames are not supported.", code="invalid_frame"),
                )
    except ConnectionResetError:
        pass  # the client hung up mid-turn (a drain deadline, a dropped socket): its right, not a fake's bug
    return ws


async def _on_text(request: web.Request, ws: web.WebSocketResponse, conn: Connection, data: str) -> bool:
    """Handle one client frame; False when the connection must end."""
    state = request.app[STATE]
    account = conn.account
    behaviour = state.book.of(account.account_id)  # re-read: config may change while the socket lives
    try:
        frame = parse_json_object(data)
    except Rejection as rejection:
        await _send_error(ws, conn, behaviour, rejection)
        return True
    kind = frame.get("type")
    if kind == "response.processed":
        return True
    if kind != "response.create":
        await _send_error(ws, conn, behaviour, invalid_request(f"Unsupported event type: {kind!r}", "type"))
        return True
    entry = state.log.record(
        "WS",
        request.path,
        conn.handshake_headers,
        body=frame,
        account=account.account_id,
        transport="websocket",
        kind="frame",
        peer=request.remote,
    )
    account.stats.requests += 1
    account.stats.transports["websocket"] += 1
    limit = behaviour.ws_connection_limit_after_turns
    if limit is not None and conn.turns >= limit:
        await _send_error(
            ws,
            conn,
            behaviour,
            invalid_request(CONNECTION_LIMIT_MESSAGE, code="websocket_connection_limit_reached"),
            entry,
        )
        await ws.close()
        return False
    body = {k: v for k, v in frame.items() if k not in ("type", "stream", "background", "generate")}
    try:
        check_responses_body(body, over_websocket=True)
        previous = body.get("previous_response_id")
        previous_tokens = 0
        if previous:
            if previous not in conn.responses:
                raise previous_response_not_found(str(previous))
            previous_tokens = conn.responses[previous]
        quota = admit(account, behaviour, body["model"], time.time())
    except Rejection as rejection:
        await _send_error(ws, conn, behaviour, rejection, entry)
        return True
    await _send(ws, rate_limits_event(quota))
    key = body.get("prompt_cache_key")
    turn = plan_turn(
        body,
        TurnContext(
            account.account_id,
            behaviour,
            quota,
            previous_tokens=previous_tokens,
            cached_prefix=account.cached_prefix(key) if isinstance(key, str) else 0,
            prewarm=frame.get("generate") is False,
        ),
    )
    settle(account, behaviour, key, turn, body["model"])
    if turn.billable:
        conn.responses[turn.response_id] = turn.context_tokens
    conn.turns += 1
    if behaviour.ttfb_ms:
        await asyncio.sleep(behaviour.ttfb_ms / 1000)
    headers = rate_limit_headers(quota)

    async def send(events: list[dict]) -> None:
        for event in events:
            if event["type"] == "error":
                event = {
                    "type": "error",
                    "status": stream_error_status(event["code"]),
                    "error": event["error"],
                    "headers": headers,
                }
            await _send(ws, event)

    account.stream_started()
    try:
        finished = await play(turn, behaviour, send)
    finally:
        account.stream_ended()
    account.stats.statuses[200] += 1
    entry["status"] = 200
    if not finished:
        await ws.close(code=1011, message=b"fake upstream cut the stream")
        return False
    return True
