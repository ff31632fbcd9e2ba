"""What a tick of the usage-poll job tells the other workers and replicas: a state it changes reloads every
roster, while usage alone moves no change marker (no reload of everything everywhere) and still reaches
another replica's slots (SQLite and PostgreSQL)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from server.accounts.poll_schedule import PollSchedule
from server.accounts.roster import Roster
from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.runtime import change_marker
from server.sync.reloader import ChangeWatcher
from tests.support.polling import eventually


@asynccontextmanager
async def other_replica(proxy):
    """A second host on the same database: its own slots, roster and watcher, as a worker builds them."""
    ctx = proxy.server.app.ctx
    slots = AccountSlots(SharedPrimitives.create(capacity=ctx.slots.capacity))
    roster = Roster(ctx.db, ctx.secretbox, slots)
    watcher = ChangeWatcher(ctx.db, slots, [roster.reload], [roster.reload_usage])
    await watcher.reload_all()
    watcher.start()
    try:
        yield roster, slots
    finally:
        await watcher.stop()


async def poll_tick(proxy) -> None:
    """One tick of the job with every account due."""
    upkeep = proxy.server.app.ctx.proxy.upkeep
    upkeep.schedule = PollSchedule(0.0)
    await upkeep.poll_due()


async def version(proxy) -> int:
    return await proxy.server.app.ctx.db.run(change_marker.roster_version)


async def test_a_tick_that_moves_only_usage_bumps_no_marker_and_still_reaches_another_replica(proxy):
    [added] = await proxy.add_accounts("acc_quiet")
    await poll_tick(proxy)  # the first answer may set the plan: a roster change
    async with other_replica(proxy) as (_, replica_slots):
        before = await version(proxy)
        await proxy.fake.consume("acc_quiet", 4_000_000)
        await poll_tick(proxy)
        assert await version(proxy) == before
        [shown] = await proxy.accounts()
        assert shown["usage"]["primary"]["used_percent"] == 40.0
        assert proxy.server.app.ctx.slots.get(added["slot"], Field.PRIMARY_USED) == 40.0  # this host
        await eventually(lambda: replica_slots.get(added["slot"], Field.PRIMARY_USED) == 40.0, timeout=10)
        assert await version(proxy) == before


async def test_a_state_change_from_a_tick_reaches_every_roster(proxy):
    [added] = await proxy.add_accounts("acc_spent")
    await poll_tick(proxy)
    async with other_replica(proxy) as (replica_roster, _):
        before = await version(proxy)
        await proxy.fake.configure_account("acc_spent", primary_budget_tokens=0)
        await poll_tick(proxy)
        assert await version(proxy) > before
        assert proxy.server.app.ctx.proxy.roster.get(added["id"]).status == "rate_limited"  # at once here
        await eventually(lambda: replica_roster.get(added["id"]).status == "rate_limited", timeout=10)
        await proxy.fake.configure_account("acc_spent", primary_budget_tokens=10_000_000)
        await poll_tick(proxy)
        assert proxy.server.app.ctx.proxy.roster.get(added["id"]).status == "active"
        await eventually(lambda: replica_roster.get(added["id"]).status == "active", timeout=10)
