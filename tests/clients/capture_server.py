"""A tiny stand-in for the ChatGPT Codex backend that records what a real client sends.

It owns only its recordings (every HTTP request and WebSocket frame) and a scripted turn: an optional
shell tool call first, then a text message. Used to prove the Codex CLI harness, not as the fake upstream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

SHELL_TOOL_NAMES = ("exec_command", "shell_command", "shell")

# The fields the 0.169 CLI requires in a catalog entry; one bad entry discards the whole catalog.
MODEL_ENTRY: dict[str, Any] = {
    "slug": "gpt-5.3-codex",
    "display_name": "GPT-5.3-Codex",
    "description": "Capture-server model.",
    "default_reasoning_level": "medium",
    "supported_reasoning_levels": [
        {"effort": "low", "description": "Fast"},
        {"effort": "medium", "description": "Balanced"},
        {"effort": "high", "description": "Deep"},
    ],
    "shell_type": "shell_command",
    "visibility": "list",
    "supported_in_api": True,
    "priority": 0,
    "minimal_client_version": "0.98.0",
    "base_instructions": "You are a test model.",
    "supports_reasoning_summaries": True,
    "support_verbosity": True,
    "default_verbosity": "low",
    "apply_patch_tool_type": "freeform",
    "truncation_policy": {"mode": "tokens", "limit": 10000},
    "supports_parallel_tool_calls": True,
    "context_window": 272000,
    "experimental_supported_tools": [],
    "input_modalities": ["text", "image"],
    "prefer_websockets": True,
}


@dataclass(slots=True)
class CapturedRequest:
    """One HTTP request, or one WebSocket handshake with the frames the client sent on it."""

    method: str
    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]
    body: Any
    websocket: bool = False
    frames: list[dict[str, Any]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass(slots=True)
class CaptureServer:
    """Scripted fake backend: with `shell_command` set, a turn first asks the CLI to run it."""

    shell_command: str | None = None
    reply_text: str = "OK"
    models: list[dict[str, Any]] = field(default_factory=lambda: [dict(MODEL_ENTRY)])
    reject_websocket_status: int | None = None
    requests: list[CapturedRequest] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # auto_decompress off: the CLI sends `Content-Encoding: zstd`, which aiohttp cannot decode.
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CaptureServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def codex_base_url(self) -> str:
        return f"{self.base_url}/backend-api/codex"

    def paths(self) -> list[str]:
        return [f"{'WS' if r.websocket else r.method} {r.path}" for r in self.requests]

    def responses_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path.endswith("/codex/responses")]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        raw = b"" if is_ws else await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "zstd":
            raw = await unzstd(raw)
        captured = CapturedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=list(request.headers.items()),
            body=_decode_body(raw),
            websocket=is_ws,
        )
        self.requests.append(captured)
        if request.path.endswith("/codex/models"):
            return web.json_response({"models": self.models}, headers={"x-models-etag": "capture-1"})
        if request.path.endswith("/codex/responses") and is_ws:
            return await self._websocket(request, captured)
        if request.path.endswith("/codex/responses") and request.method == "POST":
            return await self._sse(request, captured.body)
        return web.json_response({"detail": "not served by the capture server"}, status=404)

    async def _sse(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-codex-turn-state": "capture-turn-state"}
        )
        await response.prepare(request)
        for event in self._turn_events(body):
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request, captured: CapturedRequest) -> web.StreamResponse:
        if self.reject_websocket_status is not None:
            error = {"error": {"message": "websockets disabled", "code": "websocket_unsupported"}}
            return web.json_response(error, status=self.reject_websocket_status)
        ws = web.WebSocketResponse()
        ws.headers["x-codex-turn-state"] = "capture-turn-state"
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            captured.frames.append(frame)
            if frame.get("type") != "response.create":
                continue
            for event in self._turn_events(frame):
                await ws.send_str(json.dumps(event))
        return ws

    def _turn_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response_id = f"resp_capture{next(self._ids)}"
        if body.get("generate") is False:
            return _sequence(response_id, [])
        tool = _shell_tool_name(body.get("tools") or [])
        if self.shell_command is not None and tool is not None and not _has_tool_output(body):
            arguments = json.dumps(_shell_arguments(tool, self.shell_command))
            return _sequence(response_id, _function_call(response_id, tool, arguments))
        return _sequence(response_id, _message(response_id, self.reply_text))


async def unzstd(raw: bytes) -> bytes:
    """Decode a zstd request body (the `zstandard` module if present, else Debian's `zstd` tool)."""
    try:
        import zstandard
    except ImportError:
        proc = await asyncio.create_subprocess_exec(
            "zstd", "-dc", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate(raw)
        return out
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


def _decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _shell_tool_name(tools: list[dict[str, Any]]) -> str | None:
    names = {t.get("name") for t in tools if t.get("type") == "function"}
    return next((n for n in SHELL_TOOL_NAMES if n in names), None)


def _shell_arguments(tool: str, command: str) -> dict[str, Any]:
    if tool == "exec_command":
        return {"cmd": command, "yield_time_ms": 1000}
    if tool == "shell":
        return {"command": ["bash", "-lc", command]}
    return {"command": command}


def _has_tool_output(body: dict[str, Any]) -> bool:
    return any(item.get("type") == "function_call_output" for item in body.get("input") or [])


def _message(response_id: str, text: str) -> list[dict[str, Any]]:
    item_id = f"msg_{response_id}"
    part = {"type": "output_text", "text": "", "annotations": []}
    done_item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    added_item = {**done_item, "status": "in_progress", "content": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": added_item},
        {"type": "response.content_part.added", **where, "part": part},
        {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []},
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": done_item},
    ]


def _function_call(response_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    item_id = f"fc_{response_id}"
    item = {"id": item_id, "type": "function_call", "call_id": f"call_{response_id}", "name": name}
    where = {"item_id": item_id, "output_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "arguments": ""},
        },
        {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
        {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "status": "completed", "arguments": arguments},
        },
    ]


def _sequence(response_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shell = {"id": response_id, "object": "response", "model": MODEL_ENTRY["slug"], "output": []}
    usage = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 110,
    }
    events = [
        {"type": "response.created", "response": {**shell, "status": "in_progress"}},
        {"type": "response.in_progress", "response": {**shell, "status": "in_progress"}},
        *items,
        {"type": "response.completed", "response": {**shell, "status": "completed", "usage": usage}},
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]
