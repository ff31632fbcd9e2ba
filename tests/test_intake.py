"""Request intake over real sockets: callers are decided from the headers before any body is read, and
bodies arrive within a deadline and a per-worker byte budget (no slow or unfinished body pins memory).

A "remote" caller here is one relayed by a local reverse proxy (X-Forwarded-For): the local rule refuses
it exactly as it refuses a non-loopback peer, and no packet leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.support.keys import create_key, set_key_auth
from tests.support.live_server import serve_in_process
from tests.support.proxy import proxy_settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MIB = 1024 * 1024
REMOTE = {"X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
async def server(tmp_path: Path, database_url: str, fake_upstream):
    settings = proxy_settings(
        tmp_path,
        database_url,
        fake_upstream,
        request_body_timeout_seconds="0.5",
        body_bytes_in_flight=str(2 * MIB),
    )
    async with serve_in_process(settings) as live:
        yield live


@asynccontextmanager
async def partial_post(url: str, path: str, declared: int, sent: bytes, headers: dict | None = None):
    """A POST that declares `declared` body bytes and sends only `sent` (the rest is withheld)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    head += "Content-Type: application/json\r\n"
    head += f"Content-Length: {declared}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(head.encode() + b"\r\n" + sent)
    await writer.drain()
    try:
        yield reader, writer
    finally:
        writer.close()


async def answer_of(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Status, headers and the body read until the server closes the connection."""
    raw = await asyncio.wait_for(reader.read(-1), timeout)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_keyless_remote_callers_are_refused_before_their_body(server):
    """16 remote connections each declaring 30 MiB and withholding most of it: all answered 401 at
    once and closed, without the server taking their bodies."""
    app = server.app
    started = time.monotonic()
    async with asyncio.TaskGroup() as group:
        results = [group.create_task(_remote_30mib(server.url)) for _ in range(16)]
    assert [r.result()[0] for r in results] == [401] * 16
    assert all(b"local_only" in r.result()[2] for r in results)
    assert time.monotonic() - started < 3
    assert app.ctx.body_budget.in_flight == 0


async def _remote_30mib(url: str) -> tuple[int, dict, bytes]:
    async with partial_post(url, "/v1/responses", 30 * MIB, b"{" * 65536, REMOTE) as (reader, _):
        return await answer_of(reader)


async def test_a_bad_key_is_refused_before_the_body_with_key_auth_on(server):
    await create_key(server.url)
    await set_key_auth(server.url, True)
    wrong = {**REMOTE, "Authorization": "Bearer sk-clb-" + "x" * 43}
    paths = ("/backend-api/codex/responses", "/v1/chat/completions", "/backend-api/codex/responses/compact")
    for path in paths:
        async with partial_post(server.url, path, 20 * MIB, b"{}", wrong) as (reader, _):
            status, _, body = await answer_of(reader)
        assert status == 401 and b"invalid_api_key" in body, (path, body)


async def test_a_slow_body_gets_408_and_the_connection_closes(server):
    """A local caller that starts a body and stalls (slowloris) is cut off at the body deadline."""
    async with partial_post(server.url, "/v1/responses", 4096, b'{"model": ') as (reader, _):
        started = time.monotonic()
        status, headers, body = await answer_of(reader)
    assert status == 408 and b"request_timeout" in body, body
    assert 0.3 < time.monotonic() - started < 3
    assert headers.get("connection") == "close"
    assert server.app.ctx.body_budget.in_flight == 0


async def test_bodies_in_flight_are_bounded_per_worker(server):
    """Two bodies of 1.5 MiB cannot be received at once within a 2 MiB budget: the second gets a 503
    with retry-after straight away; once the first is in, the budget is free again."""
    declared = 3 * MIB // 2
    async with partial_post(server.url, "/v1/responses", declared, b"{") as (first, first_writer):
        await asyncio.sleep(0.1)
        async with partial_post(server.url, "/v1/responses", declared, b"{") as (second, _):
            status, headers, body = await answer_of(second, timeout=2)
        assert status == 503 and b"server_busy" in body and headers["retry-after"] == "1"
        first_writer.write(b" " * (declared - 2) + b"}")
        status, _, body = await answer_of(first, timeout=5)
        assert status == 400, body  # received in full and parsed (the request itself is incomplete)
    assert server.app.ctx.body_budget.in_flight == 0


async def test_a_body_over_the_size_limit_is_refused_from_its_length(server):
    async with partial_post(server.url, "/v1/responses", 64 * 1024 * MIB, b"{") as (reader, _):
        status, _, body = await answer_of(reader)
    assert status == 413, body
