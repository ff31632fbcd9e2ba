"""Client WebSockets through the proxy, over upstream WebSockets and over HTTP, and HTTP over sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from server.demo.fake_upstream.client import user_message
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body

# WebSocket turns: no SQL of its own. The request log and the roster touched here are
# tested on both databases (test_usage_writer.py, test_accounts_lifecycle.py).
DATABASES = ["sqlite"]

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


def ws_url(proxy, path: str = CODEX_ROUTE) -> str:
    return proxy.url.replace("http://", "ws://") + path


async def set_transport(proxy, value: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.put(proxy.url + "/api/settings", json={"upstream_stream_transport": value}) as r:
            assert r.status == 200, await r.text()


async def turn(ws, frame: dict, timeout: float = 10.0) -> list[dict]:
    """Send one response.create frame and read events until the turn's terminal event."""
    await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
    events = []
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        event = orjson.loads(message.data)
        events.append(event)
        if event["type"] in TERMINAL:
            return events


def text_of(events: list[dict]) -> str:
    return "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta")


def completed_id(events: list[dict]) -> str:
    assert events[-1]["type"] == "response.completed", events[-1]
    return events[-1]["response"]["id"]


def codex_frame(text: str = "hello", **extra) -> dict:
    body = codex_body(text, **extra)
    body.pop("stream")
    return body


SESSION = {"session-id": "thread-ws-1", "originator": "codex_exec"}


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_prewarm_and_several_turns_share_one_socket(proxy, upstream):
    await proxy.add_accounts("acc_ws_a", "acc_ws_b")
    await set_transport(proxy, upstream)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            prewarm = await turn(ws, {**codex_frame("warm up"), "generate": False})
            first = await turn(
                ws, {**codex_frame("first question"), "previous_response_id": completed_id(prewarm)}
            )
            assert "Hello from fake account" in text_of(first)
            tool_call = await turn(
                ws,
                {
                    **codex_frame("CALL_TOOL please", tools=[_shell_tool()]),
                    "previous_response_id": completed_id(first),
                },
            )
            call = next(e["item"] for e in tool_call if e["type"] == "response.output_item.done")
            assert call["type"] == "function_call"
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "tool says hi"}
            last = await turn(
                ws,
                {
                    "model": "gpt-5.4",
                    "input": [output],
                    "tools": [_shell_tool()],
                    "store": False,
                    "previous_response_id": completed_id(tool_call),
                },
            )
            assert "Tool result: tool says hi" in text_of(last)
    totals = (await proxy.fake.stats())["totals"]
    if upstream == "websocket":
        assert totals["ws_connections"] == 1 and totals["transports"] == {"websocket": 4}
    else:  # each turn a POST carrying the whole conversation; the prewarm is answered by the proxy
        assert totals["ws_connections"] == 0 and totals["transports"] == {"http": 3}
        posts = await proxy.fake.requests(path=CODEX_ROUTE)
        assert all("previous_response_id" not in post["body"] for post in posts)
        assert posts[-1]["body"]["input"][-2]["type"] == "function_call"  # replayed from history
    rows = await proxy.request_logs(4)
    assert len(rows) == 4
    assert {row["transport"] for row in rows} == {"websocket"}
    assert {row["status"] for row in rows} == {200}
    assert len({row["account_id"] for row in rows if row["account_id"]}) == 1


def _shell_tool() -> dict:
    return {
        "type": "function",
        "name": "exec_command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    }


async def test_http_clients_over_an_upstream_websocket(proxy):
    await proxy.add_accounts("acc_http_ws")
    await set_transport(proxy, "websocket")
    streamed = await proxy.post(CODEX_ROUTE, codex_body("over a socket"), headers=SESSION)
    assert streamed.status == 200, streamed.raw
    assert "Hello from fake account acc_http_ws" in streamed.text()
    assert streamed.events()[-1]["type"] == "response.completed"
    assert all(e["type"] != "codex.rate_limits" for e in streamed.events())
    again = await proxy.post(CODEX_ROUTE, codex_body("second request"), headers=SESSION)
    assert again.status == 200 and again.events()[-1]["type"] == "response.completed"
    answer = await proxy.post("/v1/responses", {"model": "gpt-5.4", "input": "Say hi"})
    assert answer.status == 200, answer.raw
    assert answer.json()["output"][0]["content"][0]["text"].startswith("Hello from fake account")
    stats = await proxy.fake.account_stats("acc_http_ws")
    assert stats["transports"] == {"websocket": 3}
    assert stats["ws_connections"] == 2  # the session's socket was reused for its second request
    rows = await proxy.request_logs(3)
    assert [row["status"] for row in rows] == [200, 200, 200]


async def test_an_account_failing_mid_session_moves_the_socket_and_replays_the_conversation(proxy):
    await proxy.add_accounts("acc_move_a", "acc_move_b")
    await set_transport(proxy, "websocket")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            first = await turn(ws, codex_frame("remember the word lighthouse"))
            served = [
                a for a in ("acc_move_a", "acc_move_b") if (await proxy.fake.account_stats(a))["requests"]
            ][0]
            other = "acc_move_b" if served == "acc_move_a" else "acc_move_a"
            await proxy.fake.configure_account(served, rate_limited=True)
            second = await turn(
                ws, {**codex_frame("what was the word?"), "previous_response_id": completed_id(first)}
            )
            assert second[-1]["type"] == "response.completed", second[-1]
            assert "Hello from fake account " + other in text_of(second)
            assert all(e["type"] != "error" for e in second)
    frames = [
        r for r in await proxy.fake.requests(path=CODEX_ROUTE, account=other) if r.get("kind") == "frame"
    ]
    [replayed] = frames
    assert "previous_response_id" not in replayed["body"]  # the new account got the whole conversation
    texts = orjson.dumps(replayed["body"]["input"]).decode()
    assert "lighthouse" in texts and "what was the word?" in texts
    assert "Hello from fake account " + served in texts  # the first answer came along
    rows = await proxy.request_logs(2)
    assert [row["status"] for row in rows] == [200, 200]


async def test_garbage_frames_get_error_frames_then_a_clear_close(proxy):
    await proxy.add_accounts("acc_garbage")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy)) as ws:
            await ws.send_str("this is not json")
            error = orjson.loads((await ws.receive(timeout=5)).data)
            assert error["type"] == "error" and error["status"] == 400
            assert error["error"]["code"] == "invalid_json"
            await ws.send_str('{"type": "response.processed", "response_id": "resp_x"}')  # absorbed
            await ws.send_str('{"type": "some.future.frame"}')  # absorbed
            events = await turn(ws, codex_frame("still serving?"))  # a good frame resets the count
            assert events[-1]["type"] == "response.completed"
            await ws.send_bytes(b"\x00\x01binary")
            error = orjson.loads((await ws.receive(timeout=5)).data)
            assert error["status"] == 400 and error["error"]["code"] == "invalid_frame"
            await ws.send_str("[1, 2]")
            await ws.receive(timeout=5)
            await ws.send_str("{")
            await ws.receive(timeout=5)
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1008
        async with session.ws_connect(ws_url(proxy)) as ws:  # the server is unharmed
            assert (await turn(ws, codex_frame("after the garbage")))[-1]["type"] == "response.completed"


async def test_oversize_frames_close_with_1009_and_16_mib_frames_pass(proxy):
    await proxy.add_accounts("acc_big")
    await set_transport(proxy, "websocket")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), max_msg_size=0) as ws:
            padding = "x" * (15 * 1024 * 1024)
            events = await turn(ws, codex_frame("big " + padding), timeout=30)
            assert events[-1]["type"] == "response.completed"
            sending = asyncio.create_task(ws.send_str("y" * (16 * 1024 * 1024 + 1)))
            closing = await ws.receive(timeout=10)
            await asyncio.gather(sending, return_exceptions=True)  # the server may hang up mid-frame
            assert closing.type is aiohttp.WSMsgType.CLOSE, closing
            assert ws.close_code == 1009
        async with session.ws_connect(ws_url(proxy)) as ws:
            assert (await turn(ws, codex_frame("small again")))[-1]["type"] == "response.completed"


async def test_missing_model_is_an_error_frame_and_the_socket_lives_on(proxy):
    await proxy.add_accounts("acc_bad_turn")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy)) as ws:
            events = await turn(ws, {"input": []})
            assert events[-1]["type"] == "error" and events[-1]["status"] == 400
            assert events[-1]["error"]["code"] == "missing_required_parameter"
            assert (await turn(ws, codex_frame("now properly")))[-1]["type"] == "response.completed"
    rows = await proxy.request_logs(2)
    assert sorted(row["status"] for row in rows) == [200, 400]


async def test_upgrade_refused_with_426_falls_back_to_http(proxy):
    await proxy.add_accounts("acc_no_ws", ws_reject_upgrade=True)
    await set_transport(proxy, "auto")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            first = await turn(ws, codex_frame("hello"))
            second = await turn(ws, {**codex_frame("again"), "previous_response_id": completed_id(first)})
            assert second[-1]["type"] == "response.completed"
    stats = await proxy.fake.account_stats("acc_no_ws")
    assert stats["transports"] == {"http": 2} and stats["ws_connections"] == 0


async def test_upstream_socket_limit_opens_a_new_socket_transparently(proxy):
    await proxy.add_accounts("acc_limit", ws_connection_limit_after_turns=2)
    await set_transport(proxy, "websocket")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            previous = None
            for n in range(4):
                frame = codex_frame(f"turn {n}")
                if previous:
                    frame = {**frame, "input": [user_message(f"turn {n}")], "previous_response_id": previous}
                events = await turn(ws, frame)
                previous = completed_id(events)
    stats = await proxy.fake.account_stats("acc_limit")
    assert stats["ws_connections"] == 2
    assert stats["statuses"].get("200") == 4


async def test_idle_client_sockets_are_closed_with_1001(tmp_path, database_url, fake_upstream):
    from tests.support.live_server import serve_in_process
    from tests.support.proxy import proxy_settings

    settings = proxy_settings(tmp_path, database_url, fake_upstream, websocket_idle_timeout_seconds="1")
    async with serve_in_process(settings) as server:
        async with aiohttp.ClientSession() as session:
            url = server.url.replace("http://", "ws://") + CODEX_ROUTE
            async with session.ws_connect(url) as ws:
                closing = await ws.receive(timeout=10)
                assert closing.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1001


async def test_a_plain_get_is_told_to_upgrade(proxy):
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url + CODEX_ROUTE) as response:
            assert response.status == 426
            assert (await response.json())["error"]["code"] == "upgrade_required"


async def test_a_full_account_pool_sends_the_conversation_to_an_account_with_room(proxy):
    await proxy.add_accounts("acc_room_a", "acc_room_b")
    await set_transport(proxy, "websocket")
    proxy.server.app.ctx.proxy.sockets.per_account = 1
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as one:
            async with session.ws_connect(ws_url(proxy), headers=SESSION) as two:
                first = await turn(one, codex_frame("one"))
                second = await turn(two, codex_frame("two"))  # same session, its account's pool is full
                assert first[-1]["type"] == second[-1]["type"] == "response.completed"
                assert text_of(first) != text_of(second)  # served by the two different accounts
    totals = (await proxy.fake.stats())["totals"]
    assert totals["ws_connections"] == 2 and totals["transports"] == {"websocket": 2}


async def test_the_transport_setting_takes_effect_without_a_restart(proxy):
    await proxy.add_accounts("acc_switch")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            await set_transport(proxy, "http")
            first = await turn(ws, codex_frame("over http"))
            await set_transport(proxy, "websocket")
            second = await turn(
                ws, {**codex_frame("over a socket"), "previous_response_id": completed_id(first)}
            )
            assert second[-1]["type"] == "response.completed"
    stats = await proxy.fake.account_stats("acc_switch")
    assert stats["transports"] == {"http": 1, "websocket": 1}
    [frame] = [r for r in await proxy.fake.requests(path=CODEX_ROUTE) if r.get("kind") == "frame"]
    assert "previous_response_id" not in frame["body"]  # the new socket got the whole conversation
    assert [item.get("role") for item in frame["body"]["input"]] == [
        "developer",
        "user",
        "assistant",  # the first answer, from the proxy's history of the socket
        "developer",
        "user",
    ]


async def test_sdk_clients_use_websockets_on_v1_responses(proxy):
    await proxy.add_accounts("acc_v1_ws")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy, "/v1/responses")) as ws:
            first = await turn(ws, {"model": "gpt-5.4", "input": "Say hi", "instructions": "Be brief."})
            assert "Hello from fake account acc_v1_ws" in text_of(first)
            second = await turn(
                ws, {"model": "gpt-5.4", "input": "And again", "previous_response_id": completed_id(first)}
            )
            assert second[-1]["type"] == "response.completed"
    frames = [r for r in await proxy.fake.requests(path=CODEX_ROUTE) if r.get("kind") == "frame"]
    assert [f["body"]["input"][0]["content"][0]["text"] for f in frames] == ["Say hi", "And again"]
    assert frames[0]["body"]["instructions"] == "Be brief." and frames[0]["body"]["store"] is False
    # one cache key for the whole socket, so the conversation keeps its account and upstream cache
    assert frames[0]["body"]["prompt_cache_key"] == frames[1]["body"]["prompt_cache_key"]
    rows = await proxy.request_logs(2)
    assert {row["route"] for row in rows} == {"/v1/responses"}


async def test_permessage_deflate_is_negotiated_when_offered(proxy):
    await proxy.add_accounts("acc_deflate")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), compress=15) as ws:
            assert ws.compress  # the server accepted permessage-deflate
            events = await turn(ws, codex_frame("compressed " + "words " * 5000))
            assert "Hello from fake account acc_deflate" in text_of(events)
        async with session.ws_connect(ws_url(proxy)) as ws:
            assert not ws.compress  # and does not force it on clients that do not offer it
            assert (await turn(ws, codex_frame("plain")))[-1]["type"] == "response.completed"


@pytest.mark.parametrize("upstream", ["websocket", "http"])
async def test_a_client_leaving_mid_turn_cancels_the_upstream_turn(proxy, upstream):
    await proxy.add_accounts("acc_leave", deltas=50, delta_interval_ms=50)
    await set_transport(proxy, upstream)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy), headers=SESSION) as ws:
            await ws.send_str(
                orjson.dumps({"type": "response.create", **codex_frame("long answer")}).decode()
            )
            while orjson.loads((await ws.receive(timeout=10)).data)["type"] != "response.output_text.delta":
                pass
    await eventually(  # the upstream turn stops streaming
        lambda: proxy.fake.account_stats("acc_leave"),
        lambda stats: not stats["current_streams"],
        interval=0.02,
    )
    [row] = await proxy.request_logs(1)
    assert (row["status"], row["error_code"]) == (499, "client_disconnected")
    [account] = await proxy.accounts()
    assert account["live"]["in_flight"] == 0


async def test_a_pooled_socket_the_backend_dropped_is_replaced_without_blaming_the_account(proxy):
    await proxy.add_accounts("acc_stale")
    await set_transport(proxy, "websocket")
    first = await proxy.post(CODEX_ROUTE, codex_body("first"), headers=SESSION)
    assert first.status == 200
    pool = proxy.server.app.ctx.proxy.sockets
    [idle] = [socket for sockets in pool._idle.values() for socket in sockets]
    idle.ws._response.connection.transport.abort()  # the backend went away while the socket idled
    second = await proxy.post(CODEX_ROUTE, codex_body("second"), headers=SESSION)
    assert second.status == 200 and second.events()[-1]["type"] == "response.completed"
    [account] = await proxy.accounts()
    assert account["live"]["cooldown_until"] is None
    assert (await proxy.fake.account_stats("acc_stale"))["ws_connections"] == 2
    rows = await proxy.request_logs(2)
    assert [row["attempts"] for row in rows] == [1, 1]


async def test_the_handshake_answers_a_turn_state_that_upstream_sockets_carry(proxy):
    await proxy.add_accounts("acc_turn_state")
    await set_transport(proxy, "websocket")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy)) as ws:
            turn_state = ws._response.headers["x-codex-turn-state"]
            assert turn_state.startswith("turn_")
            assert (await turn(ws, codex_frame("hi")))[-1]["type"] == "response.completed"
        async with session.ws_connect(
            ws_url(proxy), headers={"x-codex-turn-state": "turn_from_client"}
        ) as ws:
            assert ws._response.headers["x-codex-turn-state"] == "turn_from_client"
            assert (await turn(ws, codex_frame("hi")))[-1]["type"] == "response.completed"
    frames = [r for r in await proxy.fake.requests(path=CODEX_ROUTE) if r.get("kind") == "frame"]
    sent = [{k.lower(): v for k, v in f["headers"].items()}["x-codex-turn-state"] for f in frames]
    assert sent == [turn_state, "turn_from_client"]


async def test_turns_sent_back_to_back_run_in_order_and_a_flood_is_refused(proxy):
    await proxy.add_accounts("acc_queue", delta_interval_ms=20)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(proxy)) as ws:
            for n in range(12):
                await ws.send_str(orjson.dumps({"type": "response.create", **codex_frame(f"q{n}")}).decode())
            completed = refused = 0
            while completed + refused < 12:
                event = orjson.loads((await ws.receive(timeout=10)).data)
                if event["type"] == "response.completed":
                    completed += 1
                elif event["type"] == "error":
                    assert event["status"] == 429 and event["error"]["code"] == "too_many_turns"
                    refused += 1
            assert completed >= 8 and refused >= 3  # eight queued (plus the running one, if it started)
