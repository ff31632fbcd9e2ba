"""A small async client of Responses streams for tests: request bodies, SSE parsing, collected results.
Owns nothing of the fake itself; tests of the fake and of the proxy can both read streams with it."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import orjson


def user_message(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def responses_body(text: str = "hello", model: str = "gpt-5.4", **extra: object) -> dict:
    """A minimal Codex-style Responses body the backend accepts."""
    return {
        "model": model,
        "instructions": "You are Codex.",
        "input": [user_message(text)],
        "store": False,
        "stream": True,
        **extra,
    }


def bearer(auth_json: dict) -> dict[str, str]:
    tokens = auth_json["tokens"]
    return {"Authorization": f"Bearer {tokens['access_token']}", "chatgpt-account-id": tokens["account_id"]}


def parse_sse(raw: bytes) -> list[dict]:
    """The `data` objects of an SSE body, each checked against its `event:` name."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if data:
            event = orjson.loads(b"\n".join(data))
            if name is not None and event.get("type") != name:
                raise ValueError(f"event name {name!r} does not match data type {event.get('type')!r}")
            events.append(event)
    return events


@dataclass(frozen=True, slots=True)
class StreamResult:
    status: int
    headers: dict[str, str]
    events: list[dict]
    body: bytes

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    @property
    def terminal(self) -> dict:
        return self.events[-1]

    @property
    def usage(self) -> dict:
        return self.terminal["response"]["usage"]

    @property
    def text(self) -> str:
        return "".join(e["delta"] for e in self.events if e["type"] == "response.output_text.delta")

    @property
    def items(self) -> list[dict]:
        return [e["item"] for e in self.events if e["type"] == "response.output_item.done"]

    def json(self) -> dict:
        return orjson.loads(self.body)


async def post_responses(
    session: aiohttp.ClientSession,
    base_url: str,
    body: object,
    headers: dict[str, str] | None = None,
    path: str = "/codex/responses",
) -> StreamResult:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(
        base_url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    ) as answer:
        raw = await answer.read()
        is_sse = answer.content_type == "text/event-stream"
        return StreamResult(
            answer.status,
            {k.lower(): v for k, v in answer.headers.items()},
            parse_sse(raw) if is_sse else [],
            raw,
        )
