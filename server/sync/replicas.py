"""The deployment's live replicas, and the per-account in-flight cap shared out over them.

Each replica (one `sanic server.app` process tree: a host's workers share their in-flight counts in
shared memory) renews one heartbeat row; every worker counts the rows renewed lately and routes with
`cap // live replicas` (at least 1) streams per account, so the deployment runs at most the configured
cap on one account while there are no more replicas than the cap. Owns the replica_heartbeat table.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import secrets
import time

from pony import orm
from sanic import Sanic

from server.db import Database

log = logging.getLogger(__name__)
HEARTBEAT_S = 5.0
LIVE_WITHIN_S = 15.0  # three missed heartbeats: the replica is gone and its share goes back
FORGET_AFTER_S = 3600.0

_BEAT = """
INSERT INTO replica_heartbeat (replica_id, seen_at) VALUES ($replica_id, $now)
ON CONFLICT (replica_id) DO UPDATE SET seen_at = excluded.seen_at
"""


@orm.db_session
def beat(db: orm.Database, replica_id: str, now: float) -> int:
    """Renew this replica's row; answer how many replicas are live (this one included)."""
    db.execute(_BEAT, {}, {"replica_id": replica_id, "now": now})
    db.execute("DELETE FROM replica_heartbeat WHERE seen_at < $before", {}, {"before": now - FORGET_AFTER_S})
    live = db.select(
        "SELECT COUNT(*) FROM replica_heartbeat WHERE seen_at > $since", {}, {"since": now - LIVE_WITHIN_S}
    )
    return max(1, int(live[0]))


def share(cap: int, replicas: int) -> int:
    """This replica's part of a deployment-wide per-account cap."""
    return max(1, cap // max(1, replicas))


class ReplicaHeartbeat:
    """One per worker: renews the replica's row and keeps the balancer's cap at this replica's share."""

    def __init__(self, db: Database, replica_id: str, balancer, configured_cap: int) -> None:
        self._db = db
        self.replica_id = replica_id
        self._balancer = balancer
        self._configured_cap = configured_cap
        self.replicas = 1
        self._task: asyncio.Task | None = None

    async def beat_once(self) -> None:
        replicas = await self._db.run(beat, self.replica_id, time.time())
        if replicas != self.replicas:
            log.info(
                "live replicas=%d account_inflight_cap_here=%d (of %d)",
                replicas,
                share(self._configured_cap, replicas),
                self._configured_cap,
            )
        self.replicas = replicas
        self._balancer.inflight_cap = share(self._configured_cap, replicas)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="replica-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.beat_once()
            except Exception:  # a database hiccup: keep the last share, retry at the next beat
                log.exception("replica heartbeat failed replica=%s", self.replica_id)
            await asyncio.sleep(HEARTBEAT_S)


def install(app: Sanic) -> None:
    """Listeners: the replica's id (made once, in the main process), each worker's heartbeat task. Call
    after the listener that opens app.ctx.proxy is installed."""

    @app.main_process_start
    async def name_the_replica(app: Sanic) -> None:
        app.shared_ctx.replica_id = multiprocessing.get_context("spawn").Array(
            "c", secrets.token_hex(8).encode()
        )

    @app.before_server_start
    async def start_heartbeat(app: Sanic) -> None:
        shared = getattr(app.shared_ctx, "replica_id", None)
        # Without a main process (tests serving in process) the app is a replica of its own.
        replica_id = shared.value.decode() if shared is not None else secrets.token_hex(8)
        proxy = app.ctx.proxy
        heartbeat = ReplicaHeartbeat(
            app.ctx.db, replica_id, proxy.balancer, proxy.settings.account_inflight_cap
        )
        await heartbeat.beat_once()
        heartbeat.start()
        app.ctx.replica_heartbeat = heartbeat

    @app.after_server_stop
    async def stop_heartbeat(app: Sanic) -> None:
        heartbeat = getattr(app.ctx, "replica_heartbeat", None)
        if heartbeat is not None:
            await heartbeat.stop()
