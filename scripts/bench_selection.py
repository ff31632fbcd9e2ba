"""Micro-benchmark: the balancer's select() per request at 3 to 500 accounts, per strategy, with and
without a session key (printed figures; no timed assertions anywhere in the tests).

    .venv/bin/python scripts/bench_selection.py [--accounts 3,50,500] [--requests 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.balancer.candidates import ACTIVE, Candidate  # noqa: E402
from server.balancer.selection import Balancer  # noqa: E402
from server.balancer.slots import AccountSlots, Field, SharedPrimitives  # noqa: E402
from server.balancer.strategies import STRATEGIES  # noqa: E402


def pool(count: int) -> tuple[AccountSlots, tuple[Candidate, ...]]:
    slots = AccountSlots(SharedPrimitives.create(max(count, 1)))
    now = time.time()
    for slot in range(count):  # a realistic spread of window usage, some in flight
        slots.set(slot, Field.PRIMARY_USED, (slot * 37) % 90)
        slots.set(slot, Field.PRIMARY_RESET_AT, now + 3600)
        slots.set(slot, Field.SECONDARY_USED, (slot * 11) % 60)
        slots.set(slot, Field.SECONDARY_RESET_AT, now + 86400)
        slots.set(slot, Field.INFLIGHT, slot % 3)
    candidates = tuple(
        Candidate(account_id=i + 1, slot=i, status=ACTIVE, plan_type="plus") for i in range(count)
    )
    return slots, candidates


def per_request_us(balancer: Balancer, candidates, requests: int, sticky: bool) -> float:
    """The best of five rounds: on a shared machine the others only add other processes' time."""
    now = time.time()
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for i in range(requests):
            balancer.select(candidates, session_key=f"session-{i % 997}" if sticky else None, now=now)
        rounds.append((time.perf_counter() - started) / requests * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="3,50,500")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--loop", action="store_true", help="the per-account loop only (the old path)")
    args = parser.parse_args()
    print(f"{'accounts':>8} {'strategy':>15} {'no session':>12} {'session key':>12}")
    for count in (int(n) for n in args.accounts.split(",")):
        slots, candidates = pool(count)
        requests = max(100, args.requests * 3 // max(count, 3) // 5)
        for strategy in STRATEGIES:
            balancer = Balancer(slots, strategy, inflight_cap=4)
            if args.loop:
                balancer.table_threshold = 1 << 30
            plain = per_request_us(balancer, candidates, requests, sticky=False)
            sticky = per_request_us(balancer, candidates, requests, sticky=True)
            print(f"{count:>8} {strategy:>15} {plain:>9.1f} µs {sticky:>9.1f} µs", flush=True)


if __name__ == "__main__":
    main()
