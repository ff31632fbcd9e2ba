"""GET /metrics, behind CODEX_LB_METRICS_TOKEN (a bearer token for Prometheus) or dashboard sign-in, or
without either on the private CODEX_LB_METRICS_PORT; and the per-worker probe that publishes gauges (in
flight, sockets, writer queue, loop lag) each second."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time

from aiohttp import web
from sanic import Blueprint, Request, Sanic
from sanic.response import raw

from server.lifecycle import drain, reclaim
from server.metrics import exposition, recorder
from server.metrics.table import create_table

log = logging.getLogger(__name__)
bp = Blueprint("metrics")
PROBE_INTERVAL_S = 1.0


@bp.get("/metrics")
async def metrics(request: Request):
    await _authorize(request)
    return raw(_text(request.app), content_type=exposition.CONTENT_TYPE)


def _text(app: Sanic) -> bytes:
    proxy = getattr(app.ctx, "proxy", None)
    accounts = proxy.roster.accounts if proxy is not None else []
    return exposition.render(_table(app), getattr(app.ctx, "slots", None), accounts).encode()


async def _authorize(request: Request) -> None:
    token = request.app.ctx.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return
    await request.app.ctx.dashboard_auth.require(request, write=False)


def _table(app: Sanic):
    table = getattr(app.shared_ctx, "metrics_table", None)
    return table if table is not None else app.ctx.metrics_table


def install(app: Sanic) -> None:
    app.blueprint(bp)

    @app.main_process_start
    async def create_metrics_table(app: Sanic) -> None:
        app.shared_ctx.metrics_table = create_table()

    @app.before_server_start
    async def start_probe(app: Sanic) -> None:
        table = getattr(app.shared_ctx, "metrics_table", None)
        if table is None:  # served without a main process (tests): this process's own table
            table = create_table()
        app.ctx.metrics_table = table
        recorder.attach(table, reclaim.this_worker())
        app.ctx.metrics_probe = asyncio.create_task(_probe(app), name="metrics-probe")
        app.ctx.metrics_site = await _open_port(app) if app.ctx.settings.metrics_port else None

    @app.after_server_stop
    async def stop_probe(app: Sanic) -> None:
        task = getattr(app.ctx, "metrics_probe", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        recorder.detach()
        site = getattr(app.ctx, "metrics_site", None)
        if site is not None:
            await site.cleanup()


async def _open_port(app: Sanic) -> web.AppRunner:
    """The metrics port: every worker listens on it (SO_REUSEPORT), and each answers for the host."""

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=_text(app), headers={"Content-Type": exposition.CONTENT_TYPE})

    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", answer)
    runner = web.AppRunner(metrics_app, access_log=None)
    await runner.setup()
    settings = app.ctx.settings
    await web.TCPSite(runner, settings.host, settings.metrics_port, reuse_port=True).start()
    return runner


async def _probe(app: Sanic) -> None:
    """Each second: how late the loop woke us (its lag), and the gauges only this worker can see."""
    dropped_seen = 0
    while True:
        expected = time.monotonic() + PROBE_INTERVAL_S
        await asyncio.sleep(PROBE_INTERVAL_S)
        lag = max(0.0, time.monotonic() - expected)
        recorder.observe(recorder.LOOP_LAG, lag)
        proxy = getattr(app.ctx, "proxy", None)
        writer = proxy.writer if proxy is not None else None
        inflight, sockets = drain.open_counts()
        recorder.set_gauges(inflight, sockets, writer.pending if writer else 0, lag)
        if writer is not None and writer.dropped > dropped_seen:
            recorder.add_dropped(writer.dropped - dropped_seen)
            dropped_seen = writer.dropped
