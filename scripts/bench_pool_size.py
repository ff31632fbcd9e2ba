"""Pool-size benchmark: the same streamed load through a proxy with 3 and with 500 accounts, on an empty
and on a million-row request log (30 days of realistic rows from the history generator, bulk-inserted);
prints the proxy's CPU ms per request against 3 accounts and an empty log, and
the time of every route that reads usage. The four proxies run side by side and the rounds alternate
between them, so the machine's slow drift falls on all alike; every figure is a median over the rounds,
and a proxy's CPU against the base is the median of its rounds' ratios to the base's run of the same
round. A fifth proxy, a second 3-account empty-log one (`--control`), shows how far two identical
proxies differ: the noise any other difference must stand out of. While one proxy is measured the
others are paused (SIGSTOP), so their usage polls and rollups do not share its CPUs.
Each round also sends the same load as an API-key client whose key is restricted to every account but
one (`--clients`): the path that narrows the pool per key and rewrites the rate-limit headers.

    scripts/bench-pool-size [--rows 1000000] [--database sqlite|postgres] [--rounds 5] [--requests 6000]
                            [--clients both|plain|key] [--no-control]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import psycopg2

from scripts.bench import ROOT, process_tree_cpu, run_load, wait_http
from scripts.bench_dashboard import database
from server.config import Settings
from server.db import Database
from server.demo.fake_upstream.client import responses_body
from server.usage import history, rollups
from tests.support.live_server import free_port

DAY = 86400
SETTLE_SECONDS = 3.0  # a proxy's catch-up after a pause, kept out of its figures
KEYS = 5  # the history generator spreads the log over keys 1-5 (and requests without a key); key 1 is busy


def usage_routes(now: float) -> list[tuple[str, str]]:
    """Every route that reads usage: the key's own, the dashboard's (Overview, Usage, Accounts, Keys, Logs)
    and the Codex CLI's /status."""
    month, week = now - 30 * DAY, now - 7 * DAY
    failures = f"/api/request-logs?status=error&since={week:.0f}&limit=8"
    return [
        ("GET /v1/usage (busiest key)", "/v1/usage"),
        ("GET /api/api-keys", "/api/api-keys"),
        ("GET /api/accounts", "/api/accounts"),
        ("GET /api/accounts/1/usage-history (7 d)", "/api/accounts/1/usage-history?days=7"),
        ("GET /api/usage 24 h by hour (overview)", "/api/usage"),
        ("GET /api/usage 7 d by day (overview)", f"/api/usage?bucket=day&since={week:.0f}"),
        ("GET /api/usage 30 d by day (overview)", f"/api/usage?bucket=day&since={month:.0f}"),
        ("GET /api/usage 30 d split by account", f"/api/usage?bucket=day&since={month:.0f}&split=account"),
        ("GET /api/usage 30 d split by key", f"/api/usage?bucket=day&since={month:.0f}&split=key"),
        ("GET /api/request-logs (first page)", "/api/request-logs?limit=50"),
        ("GET /api/request-logs failures 7 d (overview)", failures),
        ("GET /api/sessions (7 d)", "/api/sessions"),
        ("GET /api/codex/usage", "/api/codex/usage"),
        ("GET /backend-api/wham/usage", "/backend-api/wham/usage"),
    ]


@dataclass
class Load:
    cpu_ms: list[float] = field(default_factory=list)
    net_ms: list[float] = field(default_factory=list)  # CPU ms/req less the background's share
    rates: list[float] = field(default_factory=list)


@dataclass
class Setup:
    accounts: int
    rows: int
    control: bool = False  # a second copy of the base: the noise floor
    url: str = ""
    process: subprocess.Popen | None = None
    key: str = ""
    restricted_key: str = ""  # a key for every account but the first
    cpu_ms: list[float] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)  # CPU ms per second of no load: background jobs
    net_ms: list[float] = field(default_factory=list)  # CPU ms/req less the background's share
    rates: list[float] = field(default_factory=list)
    routes: dict[str, list[float]] = field(default_factory=dict)
    keyed: Load = field(default_factory=Load)  # the same load as a restricted key's client

    @property
    def label(self) -> str:
        label = f"{self.accounts} accounts, {'empty log' if not self.rows else f'{self.rows:,} rows'}"
        return f"{label} (again)" if self.control else label


def fill(url: str, data_dir: Path, rows: int, accounts: int, now: float) -> float:
    """Write the history into a migrated database (keys 1-5, every account of the setup); the seconds
    it took."""
    started = time.perf_counter()
    env = {"CODEX_LB_DATA_DIR": str(data_dir), "CODEX_LB_DATABASE_URL": url}
    db = Database(Settings.load(env, cwd=data_dir))
    db.open()
    if rows:
        spec = history.HistorySpec(
            rows=rows,
            days=30,
            account_ids=tuple(range(1, accounts + 1)),
            api_key_ids=tuple(range(1, KEYS + 1)),
            now=now,
        )
        history.fill(db.orm, spec, roll_up=False)
        rollups.roll_up_now(db.orm, now, retention_days=0)
    db.close()
    if url.startswith("postgresql"):
        vacuum(url)
    return time.perf_counter() - started


def vacuum(url: str) -> None:
    """What autovacuum does to freshly filled tables within a minute on a default PostgreSQL: statistics
    for the planner and a visibility map, without which an index-only scan reads every row's page too.
    (The CI machines' server runs with autovacuum off; a database in service has been vacuumed.)"""
    conn = psycopg2.connect(url)
    conn.autocommit = True  # VACUUM refuses to run inside a transaction
    try:
        cur = conn.cursor()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        for (table,) in cur.fetchall():
            cur.execute(f'VACUUM ANALYZE "{table}"')
    finally:
        conn.close()


@asynccontextmanager
async def alone(setup: Setup, setups: list[Setup]):
    """The other proxies paused (their whole process groups) while `setup` is measured. It ran only
    moments since its own pause ended: its timers that fell due meanwhile (polls, a rollup pass) fire
    first, before the measurement."""
    others = [s.process.pid for s in setups if s is not setup]
    for pid in others:
        os.killpg(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(SETTLE_SECONDS)
        yield
    finally:
        for pid in others:
            os.killpg(pid, signal.SIGCONT)


def start_proxy(setup: Setup, data_dir: Path, url: str, fake_url: str, workers: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CODEX_LB_DATA_DIR": str(data_dir),
        "CODEX_LB_DATABASE_URL": url,
        "CODEX_LB_UPSTREAM_BASE_URL": f"{fake_url}/backend-api",
        "CODEX_LB_AUTH_BASE_URL": fake_url,
        "CODEX_LB_LOG_LEVEL": "WARNING",
        "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "64",
        "CODEX_LB_REQUEST_LOG_RETENTION_DAYS": "0",  # the generated month stays whole
    }
    command = [sys.executable, "-m", "sanic", "server.app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-logs"]  # fmt: skip
    quiet = subprocess.DEVNULL
    setup.process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=quiet, stderr=quiet, start_new_session=True
    )
    setup.url = f"http://127.0.0.1:{port}"


async def populate(session: aiohttp.ClientSession, setup: Setup, fake_url: str) -> None:
    """Keys 1-5 (the ones the history names) and the setup's accounts, imported at once."""
    await wait_http(setup.url + "/health/ready", timeout=120)
    for n in range(1, KEYS + 1):
        async with session.post(setup.url + "/api/api-keys", json={"name": f"bench key {n}"}) as r:
            created = await r.json()
            assert r.status == 201 and created["id"] == n, created
            setup.key = setup.key or created["key"]
    form = aiohttp.FormData()
    for i in range(setup.accounts):
        async with session.post(
            fake_url + "/__accounts", json={"account_id": f"scale_{setup.rows}_{i}"}
        ) as r:
            form.add_field("auth_json", orjson.dumps(await r.json()), filename=f"{i}.json")
    async with session.post(setup.url + "/api/accounts/import", data=form) as r:
        assert r.status == 200, await r.text()
    async with session.get(setup.url + "/api/accounts") as r:
        listed = await r.json()
    ids = sorted(a["id"] for a in listed["accounts"])
    spec = {"name": "bench restricted key", "allowed_account_ids": ids[1:]}
    async with session.post(setup.url + "/api/api-keys", json=spec) as r:
        created = await r.json()
        assert r.status == 201, created
        setup.restricted_key = created["key"]


async def time_routes(session: aiohttp.ClientSession, setup: Setup, warm: bool) -> None:
    headers = {"Authorization": f"Bearer {setup.key}"}
    for name, path in usage_routes(time.time()):
        for _ in range(2 if warm else 1):  # the first round warms caches, as an open dashboard has
            started = time.perf_counter()
            async with session.get(setup.url + path, headers=headers if path == "/v1/usage" else None) as r:
                await r.read()
                assert r.status == 200, f"{name}: HTTP {r.status}"
            elapsed = (time.perf_counter() - started) * 1000
        setup.routes.setdefault(name, []).append(elapsed)


async def idle_cpu(pid: int, seconds: float) -> float:
    """The proxy's CPU ms per second while nothing is asked of it (usage polls, rollups, reloads)."""
    before = process_tree_cpu(pid)
    await asyncio.sleep(seconds)
    return (process_tree_cpu(pid) - before) * 1000 / seconds


async def bench(args: argparse.Namespace) -> None:
    setups = [Setup(a, r) for r in dict.fromkeys((0, args.rows)) for a in (3, args.accounts)]
    if args.control:
        setups.append(Setup(3, 0, control=True))
    now = time.time()
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    quiet = subprocess.DEVNULL
    fake_command = [sys.executable, "-m", "server.demo.fake_upstream", "--port", str(fake_port)]
    fake = subprocess.Popen(fake_command, cwd=ROOT, stdout=quiet, stderr=quiet)
    with tempfile.TemporaryDirectory(prefix="codex-lb-scale-") as tmp, ExitStack() as stack:
        try:
            await prepare(setups, Path(tmp), args, now, fake_url, stack)
            await wait_http(fake_url + "/__stats")
            async with aiohttp.ClientSession() as session:
                await session.post(fake_url + "/__config", data=orjson.dumps({"defaults": {"deltas": 8}}))
                for setup in setups:
                    await populate(session, setup, fake_url)
                await asyncio.sleep(3)  # every worker has its roster; the start-up rollup pass is over
                for setup in setups:  # long enough to hold several poll ticks (every 5 s)
                    async with alone(setup, setups):
                        setup.idle_ms.append(await idle_cpu(setup.process.pid, args.idle_seconds))
                body = orjson.dumps(responses_body("benchmark prompt " * 20))
                for round_no in range(args.rounds):
                    order = setups[round_no % len(setups) :] + setups[: round_no % len(setups)]
                    for setup in order:
                        async with alone(setup, setups):
                            if args.clients != "key":
                                await measure(setup, setup, body, {}, args)
                            if args.clients != "plain":
                                auth = {"Authorization": f"Bearer {setup.restricted_key}"}
                                await measure(setup, setup.keyed, body, auth, args)
                            await time_routes(session, setup, warm=round_no == 0)
                    print(f"  round {round_no + 1}/{args.rounds} done", flush=True)
        finally:
            for setup in setups:
                if setup.process is not None:
                    os.killpg(setup.process.pid, signal.SIGTERM)
                    setup.process.wait(30)
            fake.terminate()
            fake.wait(15)
    report(setups, args)


async def measure(setup: Setup, into: Setup | Load, body: bytes, headers: dict, args) -> None:
    """One round of the streamed load through `setup`'s proxy, its figures added to `into`."""
    result = await run_load(setup.url + "/backend-api/codex/responses", body,
                            {"content-type": "application/json", **headers}, args.requests,
                            args.concurrency, setup.process.pid, setup.label)  # fmt: skip
    into.cpu_ms.append(result.proxy_cpu_s / result.requests * 1000)
    background = setup.idle_ms[0] * result.seconds
    into.net_ms.append((result.proxy_cpu_s * 1000 - background) / result.requests)
    into.rates.append(result.rate)


async def prepare(setups: list[Setup], tmp: Path, args, now: float, fake_url: str, stack: ExitStack) -> None:
    """A database per setup, the million rows written once per log and copied (SQLite) or written into
    each schema (PostgreSQL); then, every copy made, a proxy on each."""
    templates: dict[tuple[int, int], Path] = {}
    places = []
    for index, setup in enumerate(setups):
        data_dir = tmp / f"setup{index}"
        data_dir.mkdir()
        url = stack.enter_context(database(args.database, data_dir))
        if args.database == "sqlite":
            url = f"sqlite:///{data_dir / 'store.db'}"
            shape = (setup.rows, setup.accounts)
            if shape in templates:
                for name in ("store.db", "store.db-wal", "store.db-shm"):
                    if (templates[shape] / name).exists():
                        shutil.copy(templates[shape] / name, data_dir / name)
            else:
                seconds = fill(url, data_dir, setup.rows, setup.accounts, now)
                templates[shape] = data_dir
                print(f"{setup.label}: log written in {seconds:.0f} s", flush=True)
        else:
            seconds = fill(url, data_dir, setup.rows, setup.accounts, now)
            print(f"{setup.label}: log written in {seconds:.0f} s", flush=True)
        places.append((data_dir, url))
    for setup, (data_dir, url) in zip(setups, places, strict=True):
        start_proxy(setup, data_dir, url, fake_url, args.workers)


def report(setups: list[Setup], args) -> None:
    print(f"\nStreamed load, {args.database}, {args.requests} requests x {args.rounds} rounds at concurrency "
          f"{args.concurrency}, {args.workers} worker(s), one proxy at a time; medians, 'vs base' of each "
          "round's ratio (lowest to highest in brackets)")  # fmt: skip
    loads = {"plain": [(s, s) for s in setups], "key": [(s, s.keyed) for s in setups]}
    titles = {"plain": "without an API key", "key": "as a key client restricted to all accounts but one"}
    for kind in ("plain", "key") if args.clients == "both" else (args.clients,):
        base = loads[kind][0][1]
        print(f"  {titles[kind]}")
        print(f"  {'setup':38} {'req/s':>6} {'CPU ms/req':>11} {'vs base':>22} {'idle CPU ms/s':>14} "
              f"{'less idle':>10} {'vs base':>8}")  # fmt: skip
        for s, load in loads[kind]:
            cpu, idle, net = (statistics.median(v) for v in (load.cpu_ms, s.idle_ms, load.net_ms))
            rate = statistics.median(load.rates)
            vs_base, net_vs_base = _paired(load.cpu_ms, base.cpu_ms), _paired(load.net_ms, base.net_ms, False)
            print(f"  {s.label:38} {rate:6.0f} {cpu:11.2f} {vs_base:>22} {idle:14.1f} "
                  f"{net:10.2f} {net_vs_base:>8}")  # fmt: skip
    print(
        "  (idle CPU: the proxy's background work per second without load, mostly usage polls; 'less idle'"
        " takes its share out of each request)"
    )
    print("\nRoutes that read usage (ms through HTTP, median over the rounds)")
    print(f"  {'route':46}" + "".join(f"{_short(s):>20}" for s in setups))
    for name in setups[0].routes:
        cells = [statistics.median(s.routes[name]) for s in setups]
        flag = "  over 50 ms" if max(cells) > 50 else ""
        print(f"  {name:46}" + "".join(f"{c:20.2f}" for c in cells) + flag)


def _paired(figures: list[float], base: list[float], spread: bool = True) -> str:
    """The median of each round's ratio to the base's same round: the slow drift of a shared machine
    moves both sides of a pair alike."""
    ratios = sorted(f / b - 1 for f, b in zip(figures, base, strict=True))
    median = f"{statistics.median(ratios):+.0%}"
    return f"{median} ({ratios[0]:+.0%} to {ratios[-1]:+.0%})" if spread else median


def _short(setup: Setup) -> str:
    rows = "empty" if not setup.rows else f"{setup.rows / 1e6:g}M rows"
    return f"{setup.accounts} acc, {rows}{' again' if setup.control else ''}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench-pool-size",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=6000)  # fewer: the spread hides the effect
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--clients",
        choices=("both", "plain", "key"),
        default="both",
        help="the load without an API key, as a restricted key's client, or both (each round)",
    )
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle watch per proxy")
    parser.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a second 3-account empty-log proxy, to show the noise between two identical ones",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(bench(parse()))
