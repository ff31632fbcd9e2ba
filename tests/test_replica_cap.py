"""The per-account in-flight cap holds for the deployment: each live replica routes with its share of
it (cap // live replicas, at least 1), learned from the replicas' heartbeat rows."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import orjson
import pytest

from tests.support.live_server import serve_in_process
from tests.support.polling import eventually
from tests.support.proxy import CODEX_ROUTE, codex_body, harness_for, proxy_settings


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_replicas_run_at_most_the_cap_on_one_account(tmp_path, database_url, fake_upstream):
    def replica(name: str):
        return proxy_settings(
            tmp_path / name,
            database_url,
            fake_upstream,
            encryption_key_file=str(tmp_path / "shared.key"),
            account_inflight_cap="2",
        )

    async with contextlib.AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(serve_in_process(replica(n))) for n in ("a", "b")]
        first = await stack.enter_async_context(harness_for(servers[0], fake_upstream, replica("a")))
        await first.add_accounts("acc_busy", deltas=6, delta_interval_ms=80)
        await eventually(  # the replicas see each other
            lambda: [s.app.ctx.replica_heartbeat.replicas for s in servers],
            lambda seen: seen == [2, 2],
            timeout=15,
            interval=0.1,
        )
        assert {s.app.ctx.proxy.balancer.inflight_cap for s in servers} == {1}
        await eventually(  # B reloads from the database
            lambda: [bool(s.app.ctx.proxy.roster.candidates) for s in servers], all, timeout=15, interval=0.1
        )

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def call(url: str) -> int:
                async with session.post(url + CODEX_ROUTE, data=orjson.dumps(codex_body())) as answer:
                    await answer.read()
                    return answer.status

            statuses = await asyncio.gather(*(call(s.url) for s in servers for _ in range(4)))
        assert statuses == [200] * 8
        assert (await fake_upstream.account_stats("acc_busy"))["max_concurrent_streams"] <= 2
