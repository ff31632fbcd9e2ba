"""Leases: one holder at a time across processes, expiry takeover, and fencing of stale holders."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pony import orm

from server.config import Settings
from server.db import Database
from server.runtime import leases


def open_database(database_url: str, tmp_path) -> Database:
    settings = Settings.load(
        {"CODEX_LB_DATA_DIR": str(tmp_path), "CODEX_LB_DATABASE_URL": database_url}, cwd=tmp_path
    )
    db = Database(settings)
    db.open()
    return db


@pytest.fixture
def db(database_url, tmp_path):
    database = open_database(database_url, tmp_path)
    yield database
    database.close()


def test_free_lease_is_taken_and_busy_lease_refused(db):
    first = leases.acquire(db.orm, "job", "a", ttl=30)
    assert first is not None and first.fencing_token == 1
    assert leases.acquire(db.orm, "job", "b", ttl=30) is None
    again = leases.acquire(db.orm, "job", "a", ttl=30)
    assert again is not None and again.fencing_token == 1  # re-acquiring your own lease keeps the token


def test_release_lets_the_next_holder_in_with_a_new_token(db):
    lease = leases.acquire(db.orm, "job", "a", ttl=30)
    assert leases.release(db.orm, lease)
    taken = leases.acquire(db.orm, "job", "b", ttl=30)
    assert taken is not None and taken.fencing_token == 2


def test_expired_lease_is_taken_over_and_the_stale_holder_is_fenced(db):
    now = time.time()
    stale = leases.acquire(db.orm, "refresh:acc1", "a", ttl=5, now=now)
    assert leases.acquire(db.orm, "refresh:acc1", "b", ttl=5, now=now + 1) is None
    fresh = leases.acquire(db.orm, "refresh:acc1", "b", ttl=5, now=now + 6)
    assert fresh is not None and fresh.fencing_token == stale.fencing_token + 1
    with pytest.raises(leases.StaleLeaseError):
        leases.renew(db.orm, stale, ttl=5, now=now + 6)
    with orm.db_session, pytest.raises(leases.StaleLeaseError):
        leases.check_fence(db.orm, "refresh:acc1", stale.fencing_token, now=now + 6)
    with orm.db_session:
        leases.check_fence(db.orm, "refresh:acc1", fresh.fencing_token, now=now + 6)
    assert not leases.release(db.orm, stale)


def test_renew_extends_the_lease(db):
    now = time.time()
    lease = leases.acquire(db.orm, "job", "a", ttl=5, now=now)
    renewed = leases.renew(db.orm, lease, ttl=5, now=now + 4)
    assert renewed.expires_at == pytest.approx(now + 9)
    assert leases.acquire(db.orm, "job", "b", ttl=5, now=now + 7) is None


def test_threads_racing_for_one_lease_yield_one_winner(db):
    def contend(holder: str):
        return leases.acquire(db.orm, "race", holder, ttl=30)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(contend, [f"w{i}" for i in range(8)]))
    assert sum(r is not None for r in results) == 1


def _contend_for(database_url, data_dir, holders, overlaps, wins, barrier):
    """One process: for a while, take the lease whenever free, hold it briefly, count holders."""
    database = open_database(database_url, data_dir)
    holder = leases.new_holder_id()
    won = 0
    barrier.wait()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        lease = leases.acquire(database.orm, "contended", holder, ttl=10)
        if lease is None:
            time.sleep(0.002)
            continue
        won += 1
        with holders.get_lock():
            holders.value += 1
            if holders.value > 1:
                overlaps.value += 1
        time.sleep(0.005)
        with holders.get_lock():
            holders.value -= 1
        leases.release(database.orm, lease)
    database.close()
    wins.put(won)


def test_separate_processes_never_hold_the_lease_together(database_url, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    holders, overlaps, wins, barrier = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Queue(), ctx.Barrier(4)
    processes = [
        ctx.Process(
            target=_contend_for, args=(database_url, tmp_path / f"p{i}", holders, overlaps, wins, barrier)
        )
        for i in range(4)
    ]
    for process in processes:
        process.start()
    counts = [wins.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert overlaps.value == 0
    assert sum(counts) >= 4
    assert sum(1 for c in counts if c) >= 2  # the lease really changed hands between processes
