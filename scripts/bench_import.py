"""Benchmark: importing accounts one at a time into a growing pool, as a worker sees it: each import
writes the account and reloads this worker's roster (the other workers reload the same way).

    .venv/bin/python scripts/bench_import.py [--accounts 500]
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

import orjson  # noqa: E402
from nacl.utils import random as random_bytes  # noqa: E402

from server.accounts import store  # noqa: E402
from server.accounts.authjson import parse_auth_json  # noqa: E402
from server.accounts.roster import Roster  # noqa: E402
from server.balancer.slots import AccountSlots, SharedPrimitives  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import Database  # noqa: E402
from server.demo.fake_upstream import mint_auth_json  # noqa: E402
from server.runtime.secretbox import SecretBox  # noqa: E402


async def bench(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load({"CODEX_LB_DATA_DIR": tmp}, cwd=Path(tmp))
        db = Database(settings)
        db.open()
        box = SecretBox(random_bytes(32))
        roster = Roster(db, box, AccountSlots(SharedPrimitives.create(max(count, 1))))
        await roster.reload()
        marks = {1, count // 4, count // 2, count * 3 // 4, count}
        started = time.perf_counter()
        for n in range(1, count + 1):
            creds = parse_auth_json(orjson.dumps(mint_auth_json(f"acc_bench_{n}")))
            one = time.perf_counter()
            await db.run(store.upsert_credentials, creds, box, count)
            written = time.perf_counter()
            await roster.reload()
            if n in marks:
                done = time.perf_counter()
                print(f"  import #{n:4}: {(done - one) * 1000:7.2f} ms (write + reload; "
                      f"the reload {(done - written) * 1000:.2f} ms)")  # fmt: skip
        total = time.perf_counter() - started
        print(f"{count} imports in {total:.1f} s ({total / count * 1000:.1f} ms each on average)")
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=500)
    asyncio.run(bench(parser.parse_args().accounts))


if __name__ == "__main__":
    main()
