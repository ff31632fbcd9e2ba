"""The proxy under test: the real app on a loopback socket, pointed at the fake upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from server.config import Settings
from server.db import Database
from server.demo.fake_upstream.client import parse_sse, user_message
from server.demo.fake_upstream.control import FakeUpstreamControl
from server.usage import queries
from tests.support.live_server import LiveServer, free_port, serve_in_process
from tests.support.polling import eventually
from tests.support.settings import make_settings

CODEX_ROUTE = "/backend-api/codex/responses"


def proxy_settings(
    tmp_path: Path, database_url: str | None, fake: FakeUpstreamControl, **environ: str
) -> Settings:
    """Settings of a proxy whose upstream and OAuth server are the fake; `environ` adds or overrides."""
    return make_settings(
        tmp_path / "data",
        database_url,
        **{
            "upstream_base_url": fake.base_url,
            "auth_base_url": fake.auth_url,
            "oauth_callback_host": "127.0.0.1",
            "oauth_callback_port": str(free_port()),  # never the real 1455: tests run side by side
            **environ,
        },
    )


@asynccontextmanager
async def serve_proxy(settings: Settings, fake: FakeUpstreamControl) -> AsyncIterator[ProxyHarness]:
    """The app served in this process with `settings`, and a harness to drive it."""
    async with serve_in_process(settings) as server, harness_for(server, fake, settings) as harness:
        yield harness


@asynccontextmanager
async def harness_for(server: LiveServer, fake: FakeUpstreamControl, settings: Settings | None):
    """A harness for a server already running (another replica, a server process): its own session."""
    # No connection limit: tests fire more concurrent requests than aiohttp's default 100 allows.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield ProxyHarness(server=server, fake=fake, settings=settings, session=session)


@dataclass
class ProxyHarness:
    """What tests do to the proxy through its public surface: import accounts, post, read the logs.
    All its requests share one client session, closed with the harness."""

    server: LiveServer
    fake: FakeUpstreamControl
    settings: Settings
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url

    async def add_accounts(self, *account_ids: str, plan_type: str = "plus", **behaviour) -> list[dict]:
        """Register accounts on the fake and import their auth.json files through the API."""
        form = aiohttp.FormData()
        for account_id in account_ids:
            auth = await self.fake.create_account(account_id, plan_type=plan_type, **behaviour)
            form.add_field(
                "auth_json",
                orjson.dumps(auth),
                filename=f"{account_id}.json",
                content_type="application/json",
            )
        async with self.session.post(self.url + "/api/accounts/import", data=form) as response:
            body = await response.json()
            assert response.status == 200, body
        return body["imported"]

    async def accounts(self) -> list[dict]:
        async with self.session.get(self.url + "/api/accounts") as response:
            assert response.status == 200
            return (await response.json())["accounts"]

    async def post(self, path: str, body: dict | bytes, headers: dict | None = None) -> ProxyAnswer:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with self.session.post(self.url + path, data=data, headers=headers or {}) as response:
            raw = await response.read()
            return ProxyAnswer(response.status, dict(response.headers), raw)

    async def request_logs(self, want: int, timeout: float = 10.0) -> list[dict]:
        """The request log once `want` rows have been written (the writer batches in the background)."""
        async with self._database() as database:
            return await eventually(
                lambda: database.run(queries.recent_requests, 1000),
                lambda rows: len(rows) >= want,
                timeout=timeout,
                what=f"{want} request-log rows",
            )

    async def logged_requests(self) -> list[dict]:
        """The request log as it stands now (to check that no more rows came)."""
        async with self._database() as database:
            return await database.run(queries.recent_requests, 1000)

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[Database]:
        database = Database(self.settings)
        await asyncio.get_running_loop().run_in_executor(None, database.open)
        try:
            yield database
        finally:
            database.close()

    async def turns(self) -> list[dict]:
        """The fake's model turns so far (HTTP posts and WebSocket frames, not handshakes), oldest first."""
        logged = await self.fake.requests(limit=1000, path=CODEX_ROUTE)
        return [r for r in logged if r.get("kind") != "handshake"]

    async def served_by(self) -> list[str]:
        """Account ids of the fake's model turns so far, oldest first."""
        return [r["account"] for r in await self.turns()]

    async def serve(self, count: int, session_key: str | None = None) -> list[str]:
        """Send `count` Codex turns one after another; the fake's account ids that served them."""
        before = len(await self.served_by())
        headers = {"session_id": session_key} if session_key else {}
        for i in range(count):
            answer = await self.post(CODEX_ROUTE, codex_body(f"turn {i}"), headers)
            assert answer.status == 200, answer.raw[:300]
        return (await self.served_by())[before:]


@dataclass
class ProxyAnswer:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> dict:
        return orjson.loads(self.raw)

    def events(self) -> list[dict]:
        return parse_sse(self.raw)

    def text(self) -> str:
        return "".join(
            e.get("delta", "") for e in self.events() if e.get("type") == "response.output_text.delta"
        )


def codex_body(text: str = "hello", model: str = "gpt-5.4", **extra) -> dict:
    """What the Codex CLI sends: base instructions as a developer message, stream and store set."""
    return {
        "model": model,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}],
            },
            user_message(text),
        ],
        "stream": True,
        "store": False,
        **extra,
    }
