"""Migrations: applied once, at start-up, even when many processes start at once; newer schemas refused."""

from __future__ import annotations

import multiprocessing

import pytest

from schema.migrations import discover, latest_version
from server.runtime import migrator


def test_fresh_database_is_migrated_to_latest(blank_database_url):
    report = migrator.migrate(blank_database_url)
    assert (report.before, report.after) == (0, latest_version())
    assert migrator.current_version(blank_database_url) == latest_version()


def test_migrating_again_does_nothing(blank_database_url):
    migrator.migrate(blank_database_url)
    again = migrator.migrate(blank_database_url)
    assert again.applied == 0


def _migrate(url_and_barrier):
    url, barrier = url_and_barrier
    barrier.wait()
    return migrator.migrate(url).applied


def test_concurrent_starters_apply_each_step_exactly_once(blank_database_url):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(6)
        with ctx.Pool(6) as pool:
            applied = pool.map(_migrate, [(blank_database_url, barrier)] * 6)
    assert sorted(applied) == [0] * 5 + [len(discover())]
    conn = migrator.connect(blank_database_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT version, COUNT(*) FROM schema_version GROUP BY version ORDER BY version")
        assert cur.fetchall() == [(m.version, 1) for m in discover()]
    finally:
        conn.close()


def test_database_newer_than_the_code_is_refused(blank_database_url):
    migrator.migrate(blank_database_url)
    conn = migrator.connect(blank_database_url)
    try:
        cur = conn.cursor()
        placeholder = "?" if blank_database_url.startswith("sqlite") else "%s"
        cur.execute(
            f"INSERT INTO schema_version (version, name, applied_at) VALUES ({placeholder}, 'future', 0)",
            (latest_version() + 1,),
        )
        if not blank_database_url.startswith("sqlite"):
            conn.commit()
    finally:
        conn.close()
    with pytest.raises(migrator.SchemaTooNewError, match="upgrade codex-lb"):
        migrator.migrate(blank_database_url)


def test_a_lower_step_landing_after_a_higher_one_still_runs(blank_database_url, monkeypatch):
    """Branches land side by side: a database may already hold a higher step when a lower one arrives."""
    steps = discover()
    late = steps[-2]
    monkeypatch.setattr(migrator, "discover", lambda: [m for m in steps if m is not late])
    migrator.migrate(blank_database_url)
    monkeypatch.setattr(migrator, "discover", lambda: steps)
    report = migrator.migrate(blank_database_url)
    assert report.applied == 1
    conn = migrator.connect(blank_database_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT version FROM schema_version ORDER BY version")
        assert [row[0] for row in cur.fetchall()] == [m.version for m in steps]
    finally:
        conn.close()
