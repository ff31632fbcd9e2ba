"""The app factory: settings, database, shared state, blueprints and life-cycle listeners.

`create_app(settings)` builds one Sanic app; per-worker objects live on app.ctx (made in
before_server_start), multiprocessing primitives on app.shared_ctx (made in main_process_start).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging

from sanic import Sanic

from server import api, errors
from server.api import openapi
from server.auth import lifecycle as auth_lifecycle
from server.balancer.slots import AccountSlots, SharedPrimitives
from server.config import Settings, prepare_data_dir
from server.db import Database
from server.edge import framing, health, intake, static_site
from server.lifecycle import drain, reclaim, supervisor
from server.metrics import route as metrics_route
from server.proxy import access, chat, models, pool_usage, responses, transcription, usage, websocket
from server.proxy.context import close_proxy_context, open_proxy_context
from server.runtime import logs, startup
from server.runtime.secretbox import SecretBox, load_or_create_key
from server.settings.database_url import redact_database_url
from server.sync import freshness, replicas

log = logging.getLogger(__name__)
_app_numbers = itertools.count()


def create_app(settings: Settings | None = None) -> Sanic:
    settings = settings or Settings.load()
    logs.configure(settings.log_level, settings.log_format)  # first: the file-mode warnings are log lines
    # Fail at start-up, with the variable named, if the data dir or key file is unusable.
    prepare_data_dir(settings)
    secret_key = load_or_create_key(settings.encryption_key_file)
    app = Sanic(_app_name(), log_config=logs.sanic_log_config(settings.log_format))
    app.config.update(
        REQUEST_MAX_SIZE=settings.request_max_bytes,
        REQUEST_TIMEOUT=60,
        RESPONSE_TIMEOUT=3600,  # long agent turns stream for many minutes
        KEEP_ALIVE_TIMEOUT=75,
        WEBSOCKET_MAX_SIZE=16 * 1024 * 1024,
        WEBSOCKET_PING_INTERVAL=settings.websocket_ping_s,  # answered by the Codex CLI and browsers
        FALLBACK_ERROR_FORMAT="json",
        AUTO_EXTEND=False,  # sanic-ext on purpose only: see server/api/openapi.py
    )
    app.ctx.settings = settings
    errors.install(app)
    framing.install(app)
    intake.install(app)
    app.blueprint(health.bp)
    app.blueprint(responses.bp)
    app.blueprint(usage.bp)
    app.blueprint(pool_usage.bp)
    app.blueprint(websocket.bp)
    app.enable_websocket()  # the WebSocket routes upgrade by hand, after their access check
    app.blueprint(chat.bp)
    app.blueprint(models.bp)
    app.blueprint(transcription.bp)
    api.install(app)
    openapi.install(app)
    metrics_route.install(app)
    supervisor.install(app, settings.shutdown_drain_s)
    drain.install(app, settings.shutdown_drain_s)
    static_site.install(app)  # last: its catch-all route yields to every other route
    _install_listeners(app, settings, secret_key)
    freshness.install(app)  # these two after the listener that opens app.ctx.proxy
    replicas.install(app)
    access.install(app)
    auth_lifecycle.install(app)  # after the listener that opens the database
    startup.install(app)
    return app


def _app_name() -> str:
    number = next(_app_numbers)
    return "codex-lb" if number == 0 else f"codex-lb-{number}"


def _install_listeners(app: Sanic, settings: Settings, secret_key: bytes) -> None:
    @app.main_process_start
    async def create_shared_state(app: Sanic) -> None:
        primitives = SharedPrimitives.create(settings.max_accounts)
        app.shared_ctx.account_slots = primitives.slots
        app.shared_ctx.roster_generation = primitives.generation
        app.shared_ctx.inflight_shares = primitives.shares
        app.shared_ctx.slot_changes = primitives.changes
        reclaim.watch(primitives, settings)  # what a worker that dies held is given back

    @app.before_server_start
    async def open_worker_resources(app: Sanic) -> None:
        app.ctx.secretbox = SecretBox(secret_key)
        app.ctx.slots = AccountSlots(_shared_primitives(app, settings), reclaim.this_worker())
        db = Database(settings)
        report = await asyncio.get_running_loop().run_in_executor(None, db.open)
        app.ctx.db = db
        app.ctx.proxy = await open_proxy_context(settings, db, app.ctx.secretbox, app.ctx.slots)
        if reclaim.this_worker() is not None:
            # What start-up made (modules, the app and its router, the roster) lives as long as the worker
            # process: out of the collector's sight, a full collection walks only what requests made since
            # (~6,000 objects, not ~90,000: 25-75 ms pauses of the event loop on a busy 2-core machine).
            # Only in a worker process: a server run inside another process (tests) must stay collectable.
            gc.freeze()
        log.info(
            "database ready url=%s schema_version=%d migrated=%d",
            redact_database_url(settings.database_url),
            report.after,
            report.applied,
        )

    @app.after_server_stop
    async def close_worker_resources(app: Sanic) -> None:
        proxy = getattr(app.ctx, "proxy", None)
        if proxy is not None:
            await close_proxy_context(proxy)
        db = getattr(app.ctx, "db", None)
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(None, db.close)


def _shared_primitives(app: Sanic, settings: Settings) -> SharedPrimitives:
    """The main process's primitives, or this process's own when run without a main process (tests)."""
    slots = getattr(app.shared_ctx, "account_slots", None)
    if slots is None:
        primitives = SharedPrimitives.create(settings.max_accounts)
        return primitives
    return SharedPrimitives(
        slots=slots,
        generation=app.shared_ctx.roster_generation,
        shares=app.shared_ctx.inflight_shares,
        changes=app.shared_ctx.slot_changes,
    )
