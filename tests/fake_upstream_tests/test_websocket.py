"""The fake backend's Responses WebSocket: handshake, turns, prewarm, previous_response_id scope, errors."""

from __future__ import annotations

import aiohttp
import pytest

from server.demo.fake_upstream.client import bearer, responses_body, user_message

BETA = {"OpenAI-Beta": "responses_websockets=2026-02-06"}


def create_frame(text: str = "hello", **extra: object) -> dict:
    body = responses_body(text)
    body.pop("stream")
    return {"type": "response.create", **body, **extra}


async def next_frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict]:
    """Frames up to and including the turn's end (terminal event or error frame)."""
    frames = []
    while True:
        frame = await ws.receive_json(timeout=5)
        frames.append(frame)
        if frame["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
            return frames


async def test_handshake_answers_101_with_turn_state_and_quota_headers(fake_upstream, session, auth):
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        headers = ws._response.headers
        assert headers["x-codex-turn-state"].startswith("ts_")
        assert "x-codex-primary-used-percent" in headers and "x-codex-credits-balance" in headers
    assert (await fake_upstream.account_stats("acc_test"))["ws_connections"] == 1


@pytest.mark.parametrize(
    ("extra_headers", "behaviour", "status"),
    [
        ({}, {}, 400),  # no OpenAI-Beta
        (BETA, {"ws_reject_upgrade": True}, 426),
        (BETA, {"primary_budget_tokens": 0}, 429),
    ],
)
async def test_handshake_rejections(fake_upstream, session, auth, extra_headers, behaviour, status):
    if behaviour:
        await fake_upstream.configure_account("acc_test", **behaviour)
    with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
        await session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **extra_headers})
    assert failure.value.status == status
    assert "x-codex-primary-used-percent" in failure.value.headers


async def test_bad_token_handshake_is_401(fake_upstream, session):
    with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
        await session.ws_connect(fake_upstream.ws_url, headers={"Authorization": "Bearer nope", **BETA})
    assert failure.value.status == 401


async def test_turns_are_preceded_by_rate_limits_and_mirror_the_sse_events(fake_upstream, session, auth):
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        for _ in range(3):
            await ws.send_json(create_frame(stream=True, background=False))  # ignored keys
            frames = await next_frames(ws)
            limits = frames[0]
            assert limits["type"] == "codex.rate_limits" and limits["plan_type"] == "plus"
            assert limits["rate_limits"]["primary"]["window_minutes"] == 300
            assert limits["rate_limits"]["allowed"] is True
            events = frames[1:]
            assert events[0]["type"] == "response.created"
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
            text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
            assert text == "Hello from fake account acc_test."
            assert events[-1]["type"] == "response.completed" and events[-1]["response"]["output"] == []
    stats = await fake_upstream.account_stats("acc_test")
    assert stats["transports"] == {"websocket": 3} and stats["requests"] == 3
    frames = await fake_upstream.requests(account="acc_test")
    assert [f["kind"] for f in frames] == ["handshake", "frame", "frame", "frame"]
    assert "stream" in frames[1]["body"] and frames[1]["transport"] == "websocket"


async def test_prewarm_then_incremental_turn_on_the_same_socket(fake_upstream, session, auth):
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await ws.send_json(create_frame(generate=False))
        prewarm = (await next_frames(ws))[1:]
        assert [e["type"] for e in prewarm] == ["response.created", "response.completed"]
        usage = prewarm[-1]["response"]["usage"]
        assert usage["output_tokens"] == 0 and usage["input_tokens"] > 0
        anchor = prewarm[-1]["response"]["id"]
        await ws.send_json(
            {**create_frame(), "input": [user_message("next")], "previous_response_id": anchor}
        )
        turn = (await next_frames(ws))[1:]
        assert turn[-1]["type"] == "response.completed"
        assert turn[0]["response"]["previous_response_id"] == anchor
        follow_up = turn[-1]["response"]["usage"]
        assert follow_up["input_tokens_details"]["cached_tokens"] == usage["input_tokens"]
        assert follow_up["input_tokens"] > usage["input_tokens"]


async def test_previous_response_id_from_another_socket_is_not_found(fake_upstream, session, auth):
    headers = {**bearer(auth), **BETA}
    async with session.ws_connect(fake_upstream.ws_url, headers=headers) as first:
        await first.send_json(create_frame())
        anchor = (await next_frames(first))[-1]["response"]["id"]
    async with session.ws_connect(fake_upstream.ws_url, headers=headers) as second:
        await second.send_json({**create_frame(), "previous_response_id": anchor})
        (frame,) = await next_frames(second)
        assert frame == {
            "type": "error",
            "status": 400,
            "headers": frame["headers"],
            "error": {
                "type": "invalid_request_error",
                "code": "previous_response_not_found",
                "message": f"Previous response with id '{anchor}' not found.",
                "param": "previous_response_id",
            },
        }
        # The socket stays usable after an error frame.
        await second.send_json(create_frame())
        assert (await next_frames(second))[-1]["type"] == "response.completed"


async def test_processed_frames_are_absorbed(fake_upstream, session, auth):
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await ws.send_json({"type": "response.processed", "response_id": "resp_x"})
        await ws.send_json(create_frame())
        frames = await next_frames(ws)
        assert frames[0]["type"] == "codex.rate_limits"


async def test_failures_become_error_frames_with_status_and_headers(fake_upstream, session, auth):
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await fake_upstream.configure_account("acc_test", rate_limited=True)
        await ws.send_json(create_frame())
        (limited,) = await next_frames(ws)
        assert limited["status"] == 429 and limited["error"]["code"] == "rate_limit_exceeded"
        assert "x-codex-primary-used-percent" in limited["headers"]
        await fake_upstream.configure_account("acc_test", rate_limited=False, primary_budget_tokens=1)
        await fake_upstream.consume("acc_test", 1)
        await ws.send_json(create_frame())
        (spent,) = await next_frames(ws)
        assert spent["status"] == 429 and spent["error"]["type"] == "usage_limit_reached"
        assert spent["headers"]["x-codex-primary-used-percent"] == "100.0"
        await ws.send_str("{broken")
        (broken,) = await next_frames(ws)
        assert broken["status"] == 400
    assert (await fake_upstream.account_stats("acc_test"))["statuses"] == {"400": 1, "429": 2}


async def test_in_stream_error_is_a_wrapped_error_frame(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", overload_in_stream="error")
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await ws.send_json(create_frame())
        frames = await next_frames(ws)
        assert [f["type"] for f in frames] == ["codex.rate_limits", "response.created", "error"]
        assert frames[-1]["status"] == 503 and frames[-1]["error"]["code"] == "server_is_overloaded"


async def test_cut_stream_closes_the_socket_mid_turn(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", cut_stream=True, cut_after_deltas=1)
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await ws.send_json(create_frame())
        types = []
        while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
            types.append(message.json()["type"])
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1011
        assert types[-1] == "response.output_text.delta" and "response.completed" not in types


async def test_connection_limit_error_after_configured_turns(fake_upstream, session, auth):
    await fake_upstream.configure_account("acc_test", ws_connection_limit_after_turns=1)
    async with session.ws_connect(fake_upstream.ws_url, headers={**bearer(auth), **BETA}) as ws:
        await ws.send_json(create_frame())
        assert (await next_frames(ws))[-1]["type"] == "response.completed"
        await ws.send_json(create_frame())
        (limit,) = await next_frames(ws)
        assert limit["error"]["code"] == "websocket_connection_limit_reached"
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_pings_are_answered(fake_upstream, session, auth):
    async with session.ws_connect(
        fake_upstream.ws_url, headers={**bearer(auth), **BETA}, autoping=False
    ) as ws:
        await ws.ping(b"are-you-there")
        pong = await ws.receive(timeout=5)
        assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"are-you-there"
