"""Everything a proxy route needs, built once per worker in before_server_start and kept on app.ctx."""

from __future__ import annotations

from dataclasses import dataclass

from server import leases, runtime_settings
from server.accounts.refresh import TokenRefresher
from server.accounts.roster import Roster
from server.balancer.selection import Balancer
from server.balancer.slots import AccountSlots
from server.config import Settings
from server.db import Database
from server.jobs import JobRunner, PeriodicJob
from server.models.registry import ModelRegistry
from server.models.sync import ModelSyncer
from server.reloader import ChangeWatcher
from server.runtime_settings import RuntimeSettingsCache
from server.upstream.client import UpstreamClient
from server.usage.pricing import PriceBook
from server.usage.writer import RequestLogWriter


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
    models: ModelRegistry
    jobs: JobRunner


async def open_proxy_context(settings: Settings, db: Database, box, slots) -> ProxyContext:
    """Per-worker proxy state: the upstream session, the roster loaded into memory, the log writer."""
    upstream = UpstreamClient(settings)
    await upstream.start()
    roster = Roster(db, box, slots)
    runtime = RuntimeSettingsCache(db, runtime_settings.defaults(settings))
    models = ModelRegistry(db)
    watcher = ChangeWatcher(db, slots, [roster.reload, runtime.reload, models.reload])
    await watcher.reload_all()
    watcher.start()
    refresher = TokenRefresher(db, box, settings.auth_base_url, leases.new_holder_id())
    refresher.session = upstream.session
    writer = RequestLogWriter(db)
    writer.start()
    # Periodic jobs: every worker runs the loop, one holder of each job's lease does the work.
    jobs = JobRunner(db, leases.new_holder_id())
    syncer = ModelSyncer(db, upstream, roster, refresher, models, settings.models_sync_interval_s)
    jobs.start(
        [
            PeriodicJob("models-sync", syncer.check_interval_s, syncer.run),
        ]
    )
    return ProxyContext(
        settings=settings,
        db=db,
        roster=roster,
        balancer=Balancer(slots, settings.routing_strategy, settings.account_inflight_cap),
        slots=slots,
        upstream=upstream,
        refresher=refresher,
        writer=writer,
        prices=PriceBook.from_settings(settings),
        runtime=runtime,
        watcher=watcher,
        models=models,
        jobs=jobs,
    )


async def close_proxy_context(ctx: ProxyContext) -> None:
    await ctx.jobs.stop()
    await ctx.watcher.stop()
    await ctx.writer.stop()  # every request-log row submitted so far reaches the database
    await ctx.upstream.close()
