"""Prints the routing simulation's table (docs/routing.md, "Routing policies"): a day of seeded synthetic
traffic through the real balancer, per strategy, placement and policy. No network, no clock; a few seconds.

    .venv/bin/python scripts/simulate_routing.py [--seed 19] [--reasons]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.routing_simulation import POOL, simulate, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--reasons", action="store_true", help="also print the routing reasons per row")
    args = parser.parse_args()
    pool = ", ".join(f"{p.name} ({p.five_hour_units:g}/{p.weekly_units:g} units)" for p in POOL)
    print(f"pool: {pool}; seed {args.seed}\n")
    outcomes = simulate(args.seed)
    print(table(outcomes))
    if args.reasons:
        for outcome in outcomes:
            reasons = ", ".join(f"{name} {count}" for name, count in sorted(outcome.routing.items()))
            print(f"\n{outcome.config}: {reasons}")


if __name__ == "__main__":
    main()
