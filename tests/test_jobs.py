"""Periodic jobs run on exactly one of several workers, and move when the holder stops."""

from __future__ import annotations

import pytest

from server.db import Database
from server.jobs import JobRunner, PeriodicJob
from server.runtime import leases
from tests.conftest import make_settings
from tests.support.polling import eventually


@pytest.fixture
def databases(tmp_path, database_url):
    opened = []
    for i in range(3):
        db = Database(make_settings(tmp_path / f"w{i}", database_url))
        db.open()
        opened.append(db)
    yield opened
    for db in opened:
        db.close()


async def test_only_one_runner_runs_a_job_and_another_takes_over_when_it_stops(databases):
    runs: list[int] = []

    def job_for(worker: int) -> PeriodicJob:
        async def run() -> None:
            runs.append(worker)

        return PeriodicJob("poll", interval_s=0.05, run=run, lease_ttl_s=0.5)

    runners = [JobRunner(db, leases.new_holder_id()) for db in databases]
    for worker, runner in enumerate(runners):
        runner.start([job_for(worker)])
    await eventually(lambda: runs, lambda runs: len(runs) >= 10, timeout=10, interval=0.02)
    assert len(set(runs)) == 1, runs
    holder = runs[0]
    await runners[holder].stop()
    before = len(runs)
    await eventually(  # another worker takes the job over, once the lease has expired
        lambda: runs[before:], lambda later: any(w != holder for w in later), timeout=10
    )
    for runner in runners:
        await runner.stop()
