"""Benchmark: the dashboard's history queries on a request log of a million rows, SQLite and PostgreSQL.

Fills a fresh database (a temporary SQLite file; a fresh schema of the local PostgreSQL) with realistic
rows over 30 days through the history generator, rolls them up as the job would, then times each query
the dashboard pages make (the function each /api handler calls; the median of several runs).

    scripts/bench-dashboard [--rows 1000000] [--databases sqlite,postgres] [--runs 5]

Measured 2026-12-01 on the shared 2-core test machine (load average 10-15), 1,000,000 rows, median ms
(SQLite / PostgreSQL): usage 24 h by hour 7.4 / 26.3, 7 d by day 5.3 / 19.0, 30 d by day 9.3 / 32.7,
7 d by hour 9.0 / 40.3; request logs first page 0.3 / 0.6, 20th page by cursor 8.8 / 22.4 (all 20
pages), by key + status=error 0.8 / 1.3, by error code 9.7 / 9.5, one row 0.1 / 0.3; sessions of 7 d
0.2 / 0.6, one session 0.1 / 0.7. Filling took 161 s / 122 s and the first roll-up 22 s / 64 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from server.config import Settings  # noqa: E402
from server.db import Database  # noqa: E402
from server.usage import browse, history, reports, rollups  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def database(kind: str, tmp: Path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    schema = f"clb_bench_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(POSTGRES)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        conn.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def timed(fn, runs: int) -> float:
    fn()  # warm the caches once, as a dashboard that is open does
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench(kind: str, rows: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        settings = Settings.load({"CODEX_LB_DATA_DIR": tmp, "CODEX_LB_DATABASE_URL": url}, cwd=Path(tmp))
        db = Database(settings)
        db.open()
        orm_db, now = db.orm, time.time()
        spec = history.HistorySpec(
            rows=rows, days=30, account_ids=tuple(range(1, 11)), api_key_ids=(1, 2, 3, 4, 5), now=now
        )
        started = time.perf_counter()
        history.fill(orm_db, spec, roll_up=False)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        rollups.roll_up_now(orm_db, now)
        rolled = time.perf_counter() - started
        if kind == "postgres":
            with psycopg2.connect(url) as conn:
                conn.cursor().execute("ANALYZE")
        print(f"\n{kind}: {rows:,} rows written in {filled:.1f} s ({rows / filled:,.0f} rows/s), "
              f"rolled up in {rolled:.1f} s", flush=True)  # fmt: skip
        a_session = browse.page(orm_db, browse.LogFilter(since=now - 3600), 200).rows
        session = next((r["session_key_hash"] for r in a_session if r["session_key_hash"]), "")
        day = 86400

        def usage(since: float, bucket: str):
            return lambda: asyncio.run(reports.report(db, reports.UsageQuery(now - since, now, bucket)))

        def logs(**filters):
            return lambda: browse.page(orm_db, browse.LogFilter(**filters), 50)

        queries = {
            "usage 24 h by hour (overview)": usage(day, "hour"),
            "usage 7 d by day (overview)": usage(7 * day, "day"),
            "usage 30 d by day (overview)": usage(30 * day, "day"),
            "usage 7 d by hour (usage page)": usage(7 * day, "hour"),
            "request logs, first page": logs(),
            "request logs, page 20 (cursor)": lambda: _page_n(orm_db, browse.LogFilter(), 20),
            "request logs by key + status=error": logs(api_key_id=3, status="error"),
            "request logs by account + model": logs(account_id=4, model="gpt-5.5"),
            "request logs by error code 503": logs(status="503"),
            "request logs of one session": logs(session=session),
            "request-log row detail": lambda: browse.detail(orm_db, a_session[0]["id"]),
            "sessions, last 24 h": lambda: browse.sessions(orm_db, now - day, now, 100),
            "sessions, last 7 d": lambda: browse.sessions(orm_db, now - 7 * day, now, 100),
            "one session's turns and moves": lambda: browse.session_turns(orm_db, session),
            "rollup pass (one new minute)": lambda: rollups.roll_up_now(orm_db, now),
        }
        for name, query in queries.items():
            print(f"  {name:40} {timed(query, runs):8.1f} ms", flush=True)
        db.close()


def _page_n(orm_db, spec, n: int):
    cursor = None
    for _ in range(n):
        found = browse.page(orm_db, spec, 50, cursor)
        cursor = browse.Cursor.decode(found.next_cursor)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for kind in args.databases.split(","):
        bench(kind.strip(), args.rows, args.runs)


if __name__ == "__main__":
    main()
