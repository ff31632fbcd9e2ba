"""What a dead worker held, given back by the main process before the worker is replaced.

Its share of the accounts' in-flight counts (kept per worker in shared memory, see balancer/slots.py)
and the leases it held (holder ids carry host and pid). Its upstream sockets and pooled connections
were its own process's and died with it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import partial

from server.balancer.slots import WIDTH, Field, SharedPrimitives
from server.config import Settings
from server.lifecycle.supervisor import hooks, worker_index
from server.runtime import migrator

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 2.0


def this_worker() -> int | None:
    """This process's worker number (stable across restarts), or None outside Sanic's workers."""
    return worker_index(os.environ.get("SANIC_WORKER_NAME", ""))


def watch(primitives: SharedPrimitives, settings: Settings) -> None:
    """In the main process: reclaim from every worker that dies."""
    hooks.on_worker_death.append(partial(_reclaim, primitives, settings.database_url))


def _reclaim(primitives: SharedPrimitives, database_url: str, worker: int, pid: int) -> None:
    freed = reclaim_inflight(primitives, worker) if worker >= 0 else 0.0
    log.warning("reclaimed from dead worker=%d pid=%d in_flight=%g", worker, pid, freed)
    # The database may be slow or away: the supervisor must not wait for it to restart the worker.
    threading.Thread(
        target=_release_leases_logged, args=(database_url, pid), name="reclaim-leases", daemon=True
    ).start()


def reclaim_inflight(primitives: SharedPrimitives, worker: int) -> float:
    """Subtract the worker's share from each account's in-flight count; returns how much was freed."""
    shares = primitives.shares
    if shares is None:
        return 0.0
    slots = primitives.slots
    capacity = len(slots) // WIDTH
    if worker >= len(shares) // capacity:
        return 0.0
    lock = slots.get_lock()
    # A worker killed inside this lock (held for microseconds) would leave it taken for good.
    if not lock.acquire(timeout=LOCK_TIMEOUT_S):
        log.error("shared account state is locked by a dead worker; in-flight counts not reclaimed")
        return 0.0
    freed = 0.0
    try:
        base = worker * capacity
        for slot in range(capacity):
            share = shares[base + slot]
            if share:
                index = slot * WIDTH + Field.INFLIGHT
                slots[index] = max(0.0, slots[index] - share)
                shares[base + slot] = 0.0
                freed += share
    finally:
        lock.release()
    return freed


def release_leases(database_url: str, pid: int, host: str | None = None) -> int:
    """Expire every lease held by a holder of process `pid` on this host (see leases.new_holder_id)."""
    prefix = f"{host or socket.gethostname()}:{pid}:"
    mark = "?" if database_url.startswith("sqlite:") else "%s"
    conn = migrator.connect(database_url)
    try:
        cur = conn.cursor()
        cur.execute(
            f"UPDATE lease SET expires_at = 0 WHERE SUBSTR(holder, 1, {len(prefix)}) = {mark} "
            "AND expires_at > 0",
            (prefix,),
        )
        count = cur.rowcount
        conn.commit()
        return count
    finally:
        conn.close()


def _release_leases_logged(database_url: str, pid: int) -> None:
    try:
        released = release_leases(database_url, pid)
    except Exception as exc:  # any driver error: the leases expire by themselves within their term
        log.warning("could not release the leases of dead pid=%d: %s", pid, type(exc).__name__)
        return
    log.warning("released leases=%d of dead pid=%d", released, pid)
