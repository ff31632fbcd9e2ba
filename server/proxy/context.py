"""Everything a proxy route needs, built once per worker in before_server_start and kept on app.ctx."""

from __future__ import annotations

from dataclasses import dataclass

from server import leases, runtime_settings
from server.accounts.callback_listener import CallbackListener
from server.accounts.login import LoginService
from server.accounts.refresh import TokenRefresher
from server.accounts.roster import Roster
from server.accounts.upkeep import Upkeep
from server.balancer.selection import Balancer
from server.balancer.slots import AccountSlots
from server.config import Settings
from server.db import Database
from server.jobs import JobRunner
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
    logins: LoginService
    callbacks: CallbackListener
    upkeep: Upkeep
    jobs: JobRunner


async def open_proxy_context(settings: Settings, db: Database, box, slots) -> ProxyContext:
    """Per-worker proxy state: the upstream session, the roster loaded into memory, the log writer."""
    upstream = UpstreamClient(settings)
    await upstream.start()
    roster = Roster(db, box, slots)
    runtime = RuntimeSettingsCache(db, runtime_settings.defaults(settings))
    watcher = ChangeWatcher(db, slots, [roster.reload, runtime.reload])
    await watcher.reload_all()
    watcher.start()
    refresher = TokenRefresher(db, box, settings.auth_base_url, leases.new_holder_id())
    refresher.session = upstream.session
    writer = RequestLogWriter(db)
    writer.start()

    async def accounts_changed() -> None:
        roster.changed()
        await roster.reload()

    logins = LoginService(db, box, settings.auth_base_url, lambda: upstream.session, accounts_changed)
    callbacks = CallbackListener(db, logins, settings.oauth_callback_host, settings.oauth_callback_port)
    logins.browser_flow_started = callbacks.flow_started
    upkeep = Upkeep(
        db, box, slots, refresher, lambda: upstream.session, settings.upstream_base_url, accounts_changed
    )
    jobs = JobRunner(db, leases.new_holder_id())
    jobs.start(upkeep.jobs(settings) + logins.jobs())
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
        logins=logins,
        callbacks=callbacks,
        upkeep=upkeep,
        jobs=jobs,
    )


async def close_proxy_context(ctx: ProxyContext) -> None:
    await ctx.jobs.stop()
    await ctx.callbacks.stop()
    await ctx.logins.stop()
    await ctx.watcher.stop()
    await ctx.writer.stop()  # every request-log row submitted so far reaches the database
    await ctx.upstream.close()
