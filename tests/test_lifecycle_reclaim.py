"""What the main process gives back for a dead worker: its in-flight share and its leases."""

from __future__ import annotations

from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.lifecycle import reclaim
from server.runtime import leases
from tests.test_leases import open_database


def test_a_dead_workers_in_flight_share_is_subtracted_and_the_others_kept():
    primitives = SharedPrimitives.create(capacity=8)
    dead, alive = AccountSlots(primitives, worker=0), AccountSlots(primitives, worker=1)
    for _ in range(3):
        dead.add_inflight(2, 1)
    alive.add_inflight(2, 1)
    alive.add_inflight(5, 1)
    dead.add_inflight(5, 1)
    dead.add_inflight(5, -1)  # finished before the worker died
    assert reclaim.reclaim_inflight(primitives, 0) == 3
    assert alive.get(2, Field.INFLIGHT) == 1 and alive.get(5, Field.INFLIGHT) == 1
    assert reclaim.reclaim_inflight(primitives, 0) == 0  # nothing twice
    alive.add_inflight(2, -1)
    assert alive.get(2, Field.INFLIGHT) == 0


def test_leases_of_a_dead_pid_are_released_and_others_kept(database_url, tmp_path):
    db = open_database(database_url, tmp_path)
    try:
        leases.acquire(db.orm, "job:usage-poll", "host-a:4242:1a2b3c4d", ttl=60)
        leases.acquire(db.orm, "refresh:7", "host-a:4242:99999999", ttl=60)
        leases.acquire(db.orm, "job:models-sync", "host-a:42420:aaaaaaaa", ttl=60)  # another pid
        leases.acquire(db.orm, "job:retention", "host-b:4242:bbbbbbbb", ttl=60)  # another host
        assert reclaim.release_leases(database_url, 4242, host="host-a") == 2
        assert leases.acquire(db.orm, "job:usage-poll", "host-a:5000:cccccccc", ttl=60) is not None
        assert leases.acquire(db.orm, "refresh:7", "host-a:5000:cccccccc", ttl=60) is not None
        assert leases.acquire(db.orm, "job:models-sync", "host-a:5000:cccccccc", ttl=60) is None
        assert leases.acquire(db.orm, "job:retention", "host-a:5000:cccccccc", ttl=60) is None
    finally:
        db.close()
