"""Benchmark: the management and usage routes' database reads at an empty and a million-row request log.

For SQLite (a temporary file) and PostgreSQL (a fresh schema of the local server) it times the function
each route calls (median of several runs) with an empty log, then again after the history generator has
written ROWS realistic rows over 30 days (five API keys and ten accounts own them; key 6 owns none, as a
key with a handful of rows). The target: every route well under 50 ms, GET /v1/usage well under 5 ms.

    scripts/bench-db-reads [--rows 1000000] [--databases sqlite,postgres] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import psycopg2  # noqa: E402
from bench_dashboard import database, timed  # noqa: E402

from server.accounts import store as accounts  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import Database  # noqa: E402
from server.keys import store as keys  # noqa: E402
from server.usage import (  # noqa: E402
    browse,
    history,
    key_totals,  # noqa: E402
    last_use,
    reports,
    rollups,
)

KEY_IDS = (1, 2, 3, 4, 5)
LIGHT_KEY = 6
DAY = 86400.0


def routes(db: Database, now: float) -> dict[str, object]:
    orm_db, all_keys = db.orm, [*KEY_IDS, LIGHT_KEY]
    return {
        "GET /v1/usage (key of few rows)": lambda: key_totals.read(orm_db, [LIGHT_KEY]),
        "GET /v1/usage (busiest key)": lambda: key_totals.read(orm_db, [1]),
        "GET /v1/usage limits (current_usage)": lambda: keys.current_usage(orm_db, [1, 2, 3], now),
        "GET /api/api-keys (totals of 6 keys)": lambda: (
            keys.load_keys(orm_db),
            key_totals.read(orm_db, all_keys),
        ),
        "GET /api/accounts (list + last used)": lambda: (
            accounts.list_accounts(orm_db),
            last_use.of_all(orm_db),
        ),
        "GET /api/accounts/<id>/usage-history": lambda: accounts.usage_history(orm_db, 1, now - 7 * DAY),
        "GET /api/usage 24 h by hour": lambda: asyncio.run(
            reports.report(db, reports.UsageQuery(now - DAY, now, "hour"))
        ),
        "GET /api/usage 30 d by day": lambda: asyncio.run(
            reports.report(db, reports.UsageQuery(now - 30 * DAY, now, "day"))
        ),
        "GET /api/request-logs (first page)": lambda: browse.page(orm_db, browse.LogFilter(), 50),
        "GET /api/request-logs?api_key_id=1": lambda: browse.page(orm_db, browse.LogFilter(api_key_id=1), 50),
        "GET /api/sessions (24 h)": lambda: browse.sessions(orm_db, now - DAY, now, 100),
    }


def bench(kind: str, rows: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        settings = Settings.load({"CODEX_LB_DATA_DIR": tmp, "CODEX_LB_DATABASE_URL": url}, cwd=Path(tmp))
        db = Database(settings)
        db.open()
        orm_db, now = db.orm, time.time()
        empty = {name: timed(fn, runs) for name, fn in routes(db, now).items()}
        spec = history.HistorySpec(
            rows=rows, days=30, account_ids=tuple(range(1, 11)), api_key_ids=KEY_IDS, now=now
        )
        started = time.perf_counter()
        history.fill(orm_db, spec, roll_up=False)
        rollups.roll_up_now(orm_db, now)
        filled = time.perf_counter() - started
        if kind == "postgres":  # as autovacuum leaves a log that has been growing for a while
            conn = psycopg2.connect(url)
            conn.autocommit = True
            conn.cursor().execute("VACUUM ANALYZE request_log")
            conn.close()
        full = {name: timed(fn, runs) for name, fn in routes(db, now).items()}
        print(f"\n{kind}: {rows:,} rows written and rolled up in {filled:.0f} s", flush=True)
        print(f"  {'route (the function it calls)':42} {'empty':>9} {f'{rows:,} rows':>14}")
        for name in empty:
            flag = "  over 50 ms" if full[name] > 50 else ""
            print(f"  {name:42} {empty[name]:6.2f} ms {full[name]:11.2f} ms{flag}", flush=True)
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench-db-reads", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for kind in args.databases.split(","):
        bench(kind.strip(), args.rows, args.runs)


if __name__ == "__main__":
    main()
