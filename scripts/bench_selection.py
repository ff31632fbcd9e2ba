"""Micro-benchmark: the balancer's select() per request at 3 to 500 accounts, per strategy, with and
without a session key (printed figures; no timed assertions anywhere in the tests). "session key" is a
remembered conversation's next turn, "new session" its first (headroom placement), "rendezvous" a turn
under session_placement=rendezvous; the last row per size adds routing policies (one burn_first, one
preserve account in ten) and prefer_earlier_reset=5h.

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


def pool(count: int, policies: bool = False) -> tuple[AccountSlots, tuple[Candidate, ...]]:
    slots = AccountSlots(SharedPrimitives.create(max(count, 1)))
    now = time.time()
    for slot in range(count):  # a realistic spread of window usage, some in flight
        slots.set(slot, Field.PRIMARY_USED, (slot * 37) % 90)
        slots.set(slot, Field.PRIMARY_RESET_AT, now + 3600)
        slots.set(slot, Field.SECONDARY_USED, (slot * 11) % 60)
        slots.set(slot, Field.SECONDARY_RESET_AT, now + 86400)
        slots.set(slot, Field.INFLIGHT, slot % 3)
    candidates = tuple(
        Candidate(account_id=i + 1, slot=i, status=ACTIVE, plan_type="plus", **_policy(i, policies))
        for i in range(count)
    )
    return slots, candidates


def _policy(index: int, policies: bool) -> dict:
    if not policies or index % 10 not in (1, 2):
        return {}
    return {"policy": "burn_first"} if index % 10 == 1 else {"policy": "preserve", "reserve_percent": 30.0}


def per_request_us(balancer: Balancer, candidates, requests: int, sessions: str | None) -> float:
    """The best of five rounds: on a shared machine the others only add other processes' time.
    sessions: None (no key), "known" (997 conversations, remembered after the first round), "new"."""
    now = time.time()
    rounds = []
    for round_ in range(6):
        keys = [None] * requests
        if sessions == "known":
            keys = [f"session-{i % 997}" for i in range(requests)]
        elif sessions == "new":
            keys = [f"new-{round_}-{i}" for i in range(requests)]
        started = time.perf_counter()
        for key in keys:
            balancer.select(candidates, session_key=key, now=now)
        rounds.append((time.perf_counter() - started) / requests * 1e6)
    return min(rounds[1:])  # the first round warms the session book up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="3,50,500")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--loop", action="store_true", help="the per-account loop only (the old path)")
    args = parser.parse_args()
    columns = ("no session", "session key", "new session", "rendezvous")
    print(f"{'accounts':>8} {'strategy':>18} " + " ".join(f"{c:>12}" for c in columns))
    for count in (int(n) for n in args.accounts.split(",")):
        requests = max(100, args.requests * 3 // max(count, 3) // 5)
        for strategy in (*STRATEGIES, "policies+5h"):
            policies = strategy == "policies+5h"
            slots, candidates = pool(count, policies)
            name = "usage_weighted" if policies else strategy
            balancer = Balancer(slots, name, inflight_cap=4)
            balancer.configure(name, True, prefer_earlier_reset="5h" if policies else "off")
            if args.loop:
                balancer.table_threshold = balancer.order_threshold = 1 << 30
            figures = [
                per_request_us(balancer, candidates, requests, None),
                per_request_us(balancer, candidates, requests, "known"),
                per_request_us(balancer, candidates, requests, "new"),
            ]
            balancer.configure(
                name, True, prefer_earlier_reset="5h" if policies else "off", placement="rendezvous"
            )
            figures.append(per_request_us(balancer, candidates, requests, "known"))
            print(f"{count:>8} {strategy:>18} " + " ".join(f"{f:>9.1f} µs" for f in figures), flush=True)


if __name__ == "__main__":
    main()
