"""Intake against unauthenticated clients on raw sockets: bodies no caller has vouched for (sign-in,
bootstrap, routes outside /api and the proxy) are capped small, kept to a short deadline and out of the
budget that keyed traffic draws from.

A "remote" caller here is one relayed by a local reverse proxy (X-Forwarded-For), as in test_intake.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest

from server.edge import intake
from tests.support.keys import bearer, create_key, set_key_auth
from tests.support.polling import eventually
from tests.test_intake import MIB, REMOTE, answer_of, partial_post

LOGIN = "/api/auth/login"
CAP = intake.PUBLIC_BODY_MAX_BYTES
PARKED = 12
KEYED = 13


async def test_parked_sign_in_bodies_do_not_starve_keyed_requests(proxy):
    """12 remote sockets declare 32 MiB sign-in bodies and 12 more declare bodies at the cap, each
    sending 15 bytes; meanwhile 13 requests with a valid key all get their answer."""
    await proxy.add_accounts("acc_1")
    key = await create_key(proxy.url)
    await set_key_auth(proxy.url, True)
    budget = proxy.server.app.ctx.body_budget
    async with AsyncExitStack() as stack:
        large = [await stack.enter_async_context(_park(proxy.url, 32 * MIB)) for _ in range(PARKED)]
        for _ in range(PARKED):
            await stack.enter_async_context(_park(proxy.url, CAP))
        firsts = [asyncio.ensure_future(reader.read(1)) for reader, _ in large]
        for first in firsts:
            stack.callback(first.cancel)
        # Every large head has been dealt with: answered, or its body is being received.
        await eventually(lambda: all(f.done() for f in firsts) or budget.in_flight >= budget.limit)
        body = {"model": "gpt-5.4", "input": "Say hi", "stream": False}
        answers = await asyncio.gather(
            *(proxy.post("/v1/responses", body, bearer(key)) for _ in range(KEYED))
        )
        statuses = [a.status for a in answers]
        print(f"keyed /v1/responses while sign-in bodies park: {statuses}")
        assert statuses == [200] * KEYED, [a.raw[:200] for a in answers]
        assert budget.in_flight == 0


def _park(url: str, declared: int):
    return partial_post(url, LOGIN, declared, b'{"password": "x', REMOTE)


@pytest.mark.parametrize("path", [LOGIN, "/api/auth/bootstrap", "/", "/no-such-page"])
async def test_a_public_body_over_the_cap_is_refused_from_its_length(live_server, path):
    async with partial_post(live_server.url, path, CAP + 1, b"{", REMOTE) as (reader, _):
        status, headers, body = await answer_of(reader, timeout=2)
    assert status == 413 and b"request_too_large" in body, body
    assert headers.get("connection") == "close"


async def test_a_chunked_public_body_is_cut_off_at_the_cap(live_server):
    host, port = live_server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {LOGIN} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    writer.write(head.encode() + b"Transfer-Encoding: chunked\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    try:
        writer.write(b"1\r\n{\r\n" + chunk)  # one byte over the cap; the server never sees the rest
        await writer.drain()
        status, headers, body = await answer_of(reader, timeout=2)
    finally:
        writer.close()
    assert status == 413 and b"request_too_large" in body, body
    assert headers.get("connection") == "close"


@pytest.fixture
def short_public_deadline(monkeypatch):
    """10 s in production (and 60 s for everyone else): 0.3 s keeps the test quick."""
    monkeypatch.setattr(intake, "PUBLIC_BODY_TIMEOUT_S", 0.3)


async def test_a_slow_public_body_meets_a_shorter_deadline(short_public_deadline, live_server):
    assert live_server.app.ctx.settings.request_body_timeout_s == 60
    async with partial_post(live_server.url, LOGIN, 64, b'{"password": ', REMOTE) as (reader, _):
        started = time.monotonic()
        status, headers, body = await answer_of(reader, timeout=5)
    assert status == 408 and b"request_timeout" in body, body
    assert time.monotonic() - started < 3
    assert headers.get("connection") == "close"
