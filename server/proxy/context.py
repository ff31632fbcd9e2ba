"""Everything a proxy route needs, built once per worker in before_server_start and kept on app.ctx."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field

from server import runtime_settings
from server.accounts import buckets as bucket_store
from server.accounts.callback_listener import CallbackListener
from server.accounts.login import LoginService
from server.accounts.refresh import TokenRefresher
from server.accounts.roster import Roster
from server.accounts.upkeep import Upkeep
from server.balancer.buckets import ModelBuckets
from server.balancer.selection import Balancer
from server.balancer.slots import AccountSlots
from server.config import Settings
from server.db import Database
from server.egress import probe as egress_probe
from server.egress import routes as egress_routes
from server.jobs import JobRunner, PeriodicJob
from server.keys import ledger
from server.keys.cache import KeyCache
from server.keys.ledger import KeyLedger
from server.models.registry import ModelRegistry
from server.models.sync import ModelSyncer
from server.proxy.pool_views import PoolViews
from server.proxy.pool_windows import RecentWindows
from server.proxy.transport import TransportChooser
from server.runtime import leases
from server.runtime_settings import RuntimeSettingsCache
from server.sync.reloader import ChangeWatcher
from server.upstream.client import UpstreamClient
from server.upstream.websocket_pool import SocketPool
from server.usage.pricing import PriceBook
from server.usage.upkeep import RequestLogUpkeep
from server.usage.writer import RequestLogWriter

WS_POOL_IDLE_S = 120.0  # an idle upstream WebSocket is closed after this long


class BackgroundTasks:
    """Work a request starts and does not wait for (state write-throughs): tracked so that the worker
    can cancel what is left when it stops."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, work: Coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(slots=True)
class ProxyContext:
    settings: Settings
    db: Database
    roster: Roster
    balancer: Balancer
    slots: AccountSlots
    upstream: UpstreamClient
    refresher: TokenRefresher
    writer: RequestLogWriter
    prices: PriceBook
    runtime: RuntimeSettingsCache
    watcher: ChangeWatcher
    keys: KeyCache
    ledger: KeyLedger
    jobs: JobRunner
    sockets: SocketPool
    transports: TransportChooser
    models: ModelRegistry
    logins: LoginService
    callbacks: CallbackListener
    upkeep: Upkeep
    buckets: ModelBuckets
    views: PoolViews  # the accounts a client may be routed to (a key's, with an egress route)
    pool_windows: RecentWindows
    background: BackgroundTasks = field(default_factory=BackgroundTasks)


async def open_proxy_context(settings: Settings, db: Database, box, slots) -> ProxyContext:
    """Per-worker proxy state: the upstream session, the roster loaded into memory, the log writer."""
    upstream = UpstreamClient(settings)
    await upstream.start()
    roster = Roster(db, box, slots)
    runtime = RuntimeSettingsCache(db, runtime_settings.defaults(settings))
    keys = KeyCache(db)
    models = ModelRegistry(db)
    model_buckets = ModelBuckets()

    async def reload_buckets() -> None:
        model_buckets.install(await db.run(bucket_store.load))

    async def reload_egress() -> None:
        await egress_routes.load_into(upstream.egress, db, box)

    async def check_proxies() -> None:
        if await egress_probe.check_all(db, upstream.egress.proxies, settings.upstream_base_url):
            roster.changed()

    watcher = ChangeWatcher(
        db,
        slots,
        [roster.reload, runtime.reload, keys.reload, models.reload, reload_buckets, reload_egress],
        # A poll that moved only usage: its windows and per-model bucket percentages.
        [roster.reload_usage, reload_buckets],
    )
    await watcher.reload_all()
    watcher.start()
    refresher = TokenRefresher(db, box, settings.auth_base_url, leases.new_holder_id())
    refresher.session = upstream.session
    refresher.session_for = upstream.session_for
    writer = RequestLogWriter(db)
    writer.start()

    async def accounts_changed() -> None:
        roster.changed()
        await roster.reload()

    logins = LoginService(db, box, settings.auth_base_url, lambda: upstream.session, accounts_changed)
    callbacks = CallbackListener(db, logins, settings.oauth_callback_host, settings.oauth_callback_port)
    logins.browser_flow_started = callbacks.flow_started
    upkeep = Upkeep(
        db, box, slots, refresher, upstream.session_for, settings.upstream_base_url, accounts_changed
    )
    key_ledger = KeyLedger(db, leases.new_holder_id())
    key_ledger.start()
    # Periodic jobs: every worker runs the loop, one holder of each job's lease does the work.
    jobs = JobRunner(db, key_ledger.holder)
    syncer = ModelSyncer(db, upstream, roster, refresher, models, settings.models_sync_interval_s)
    request_log = RequestLogUpkeep(db, settings.request_log_retention_days, settings.usage_rollup_interval_s)
    jobs.start(
        [
            PeriodicJob("key-reservations", ledger.SWEEP_INTERVAL_S, lambda: ledger.sweep(db)),
            PeriodicJob("models-sync", syncer.check_interval_s, syncer.run),
            *upkeep.jobs(settings),
            PeriodicJob("egress-check", egress_probe.CHECK_INTERVAL_S, check_proxies, run_at_start=False),
            *logins.jobs(),
            *request_log.jobs(),
        ]
    )
    sockets = SocketPool(settings.upstream_ws_per_account, settings.upstream_ws_total, WS_POOL_IDLE_S)
    sockets.start()
    balancer = Balancer(slots, settings.routing_strategy, settings.account_inflight_cap)
    prices = PriceBook.from_settings(settings)
    runtime.follow(runtime_settings.applier(balancer, prices, request_log))
    views = PoolViews(roster, upstream.egress)
    return ProxyContext(
        settings=settings,
        db=db,
        roster=roster,
        balancer=balancer,
        slots=slots,
        upstream=upstream,
        refresher=refresher,
        writer=writer,
        prices=prices,
        runtime=runtime,
        watcher=watcher,
        keys=keys,
        ledger=key_ledger,
        jobs=jobs,
        sockets=sockets,
        transports=TransportChooser(),
        models=models,
        logins=logins,
        callbacks=callbacks,
        upkeep=upkeep,
        buckets=model_buckets,
        views=views,
        pool_windows=RecentWindows(slots, views),
    )


async def close_proxy_context(ctx: ProxyContext) -> None:
    await ctx.jobs.stop()
    await ctx.callbacks.stop()
    await ctx.logins.stop()
    await ctx.watcher.stop()
    await ctx.ledger.close()  # settles what finished requests used before the pool goes away
    await ctx.sockets.close()
    await ctx.background.close()
    await ctx.writer.stop()  # every request-log row submitted so far reaches the database
    await ctx.upstream.close()
