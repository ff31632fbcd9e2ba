"""Workers benchmark: one streamed workload against 1 worker, 4 workers and 2 replicas x 2 workers on one
PostgreSQL (a fresh schema of the test database each), with the fake upstream; prints req/s, latency,
proxy CPU per request and the ratio to one worker. Replicas share the database and the encryption key,
as in production; the client spreads its connections over them like a load balancer in front would. On
a machine with fewer cores than workers the ratio cannot rise (the fake upstream shares the cores too).

    scripts/bench-workers [--requests 400] [--concurrency 32] [--accounts 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import psycopg2

from scripts.bench import ROOT, process_tree_cpu, wait_http
from server.demo.fake_upstream.client import responses_body
from tests.support.databases import postgres_base_url
from tests.support.live_server import free_port

TOPOLOGIES = (("1 worker", 1, 1), ("4 workers", 1, 4), ("2 replicas x 2", 2, 2))


@dataclass
class Run:
    label: str
    seconds: float
    requests: int
    latencies: list[float]
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Schema:
    """A fresh PostgreSQL schema for one topology, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"clb_bench_{uuid.uuid4().hex[:10]}"
        base = postgres_base_url()
        self.url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{self.name}"

    def __enter__(self) -> str:
        self._run(f'CREATE SCHEMA "{self.name}"')
        return self.url

    def __exit__(self, *exc) -> None:
        self._run(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')

    def _run(self, sql: str) -> None:
        conn = psycopg2.connect(postgres_base_url())
        conn.autocommit = True
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()


def start_proxy(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "sanic", "server.app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-logs"]  # fmt: skip
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=quiet, stderr=quiet, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


async def load(urls: list[str], body: bytes, total: int, concurrency: int, pids: list[int], label: str):
    connector = aiohttp.TCPConnector(limit=0)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        targets = itertools.cycle(urls)

        async def client(url: str, count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                async with session.post(url + "/backend-api/codex/responses", data=body,
                                        headers={"content-type": "application/json"}) as answer:  # fmt: skip
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{label}: HTTP {answer.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client(next(targets), 4) for _ in range(concurrency)))  # warm-up
        latencies.clear()
        per_client = max(1, total // concurrency)
        cpu_before = sum(process_tree_cpu(pid) for pid in pids)
        started = time.perf_counter()
        await asyncio.gather(*(client(next(targets), per_client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = sum(process_tree_cpu(pid) for pid in pids) - cpu_before
    return Run(label, seconds, per_client * concurrency, latencies, cpu)


async def run_topology(label, replicas, workers, fake_url, args) -> Run:
    data_dir = Path(tempfile.mkdtemp(prefix="codex-lb-scale-"))
    with Schema() as database_url:
        env = {
            **os.environ,
            "CODEX_LB_DATA_DIR": str(data_dir),  # one key file: replicas must share it
            "CODEX_LB_DATABASE_URL": database_url,
            "CODEX_LB_UPSTREAM_BASE_URL": f"{fake_url}/backend-api",
            "CODEX_LB_AUTH_BASE_URL": fake_url,
            "CODEX_LB_LOG_LEVEL": "WARNING",
            "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "64",
        }
        procs = []
        try:
            first, first_url = start_proxy(env, workers)
            procs.append((first, first_url))
            await wait_http(first_url + "/health/ready", timeout=60)  # migrations run once, here
            for _ in range(replicas - 1):
                procs.append(start_proxy(env, workers))
            for _, url in procs:
                await wait_http(url + "/health/ready", timeout=60)
            async with aiohttp.ClientSession() as session:
                form = aiohttp.FormData()
                for i in range(args.accounts):
                    async with session.post(fake_url + "/__accounts", json={"account_id": f"scale_{i}"}) as r:
                        form.add_field("auth_json", orjson.dumps(await r.json()), filename=f"{i}.json")
                async with session.post(first_url + "/api/accounts/import", data=form) as r:
                    assert r.status == 200, await r.text()
            await asyncio.sleep(3)  # every worker of every replica has the roster
            body = orjson.dumps(responses_body("benchmark prompt " * 20))
            return await load([u for _, u in procs], body, args.requests, args.concurrency,
                              [p.pid for p, _ in procs], label)  # fmt: skip
        finally:
            for proc, _ in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc, _ in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench-workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--accounts", type=int, default=16)
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    fake_port = free_port()
    fake_command = [sys.executable, "-m", "server.demo.fake_upstream", "--port", str(fake_port)]
    fake = subprocess.Popen(fake_command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake_url = f"http://127.0.0.1:{fake_port}"
    try:
        await wait_http(fake_url + "/__stats")
        async with aiohttp.ClientSession() as session:
            await session.post(fake_url + "/__config", data=orjson.dumps({"defaults": {"deltas": 8}}))
        runs = [await run_topology(label, r, w, fake_url, args) for label, r, w in TOPOLOGIES]
    finally:
        fake.terminate()
        fake.wait(15)
    base = runs[0].rate
    print(f"\ncodex-lb scaling — {os.cpu_count()} cores, PostgreSQL, codex stream route, "
          f"{args.concurrency} concurrent clients")  # fmt: skip
    header = f"{'topology':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}{'scaling':>9}"
    print(header)
    print("-" * len(header))
    for run in runs:
        print(f"{run.label:<18}{run.rate:>9.0f}{run.p(0.5):>9.2f}{run.p(0.99):>9.2f}"
              f"{run.cpu_s * 1000 / run.requests:>12.2f}{run.rate / base:>8.2f}x")  # fmt: skip
    print()


if __name__ == "__main__":
    asyncio.run(main(parse()))
