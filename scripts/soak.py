"""Soak: steady load through `sanic server.app --workers 2` for minutes, with idle sockets and slow
readers beside it, printing per-worker RSS, open file descriptors and asyncio tasks, and the p99 of
time to first byte and of whole requests, at the start and at the end (and every minute between).

    scripts/soak [--minutes 10] [--clients 8] [--idle 50] [--slow-readers 4] [--workers 2]

Everything runs on loopback against the fake upstream (server/demo/fake_upstream); not part of the test
suite. Growth between the first and the last sample is what to look at: RSS, fds and tasks should be
flat once warm, and p99 should not creep up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import wait_http  # noqa: E402

from server.demo.fake_upstream.client import responses_body  # noqa: E402
from tests.support.live_server import free_port  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


class Stats:
    def __init__(self) -> None:
        self.window: list[tuple[float, float]] = []  # (ttfb, total) of requests since the last sample
        self.done = 0
        self.failed = 0

    def take(self) -> tuple[float, float, int]:
        window, self.window = self.window, []
        if not window:
            return 0.0, 0.0, 0
        ttfb = sorted(w[0] for w in window)
        total = sorted(w[1] for w in window)
        p99 = min(len(window) - 1, int(0.99 * len(window)))
        return ttfb[p99] * 1000, total[p99] * 1000, len(window)


async def steady_client(session, url: str, body: bytes, stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
                first = None
                async for _ in r.content.iter_any():
                    first = first or time.perf_counter()
                if r.status != 200:
                    raise RuntimeError(r.status)
            end = time.perf_counter()
            stats.window.append(((first or end) - started, end - started))
            stats.done += 1
        except (aiohttp.ClientError, RuntimeError, TimeoutError):
            stats.failed += 1
            await asyncio.sleep(0.1)


async def idle_socket(host: str, port: int, stop: asyncio.Event) -> None:
    """A connection that sends one request and then just sits there; reopened when the server closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            while not stop.is_set() and await reader.read(4096):
                pass
            writer.close()
        except OSError:
            await asyncio.sleep(0.5)


async def slow_reader(host: str, port: int, body: bytes, stop: asyncio.Event) -> None:
    """Asks for a stream and reads it a few bytes a second."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=256)
            head = "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            while not stop.is_set() and await reader.read(64):
                await asyncio.sleep(0.25)
            writer.close()
        except OSError:
            await asyncio.sleep(0.5)


def workers_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def rss_mib(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB / 1024
    except OSError:
        return 0.0


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def tasks_per_worker(url: str) -> dict[int, int]:
    """/health/live answers from whichever worker takes the connection: ask on fresh connections."""
    seen: dict[int, int] = {}
    for _ in range(24):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            async with session.get(url + "/health/live") as r:
                body = await r.json()
                seen[body["worker"]] = body.get("tasks", -1)
    return seen


async def sample(label: str, proxy_pid: int, url: str, stats: Stats, rows: list) -> None:
    tasks = await tasks_per_worker(url)
    ttfb, total, n = stats.take()
    workers = [w for w in workers_of(proxy_pid) if w in tasks]  # not Sanic's helper processes
    cells = [
        f"pid {w}: rss {rss_mib(w):6.1f} MiB fds {fds(w):4d} tasks {tasks.get(w, '?')!s:>4}" for w in workers
    ]
    line = f"{label:>6}  p99 ttfb {ttfb:7.1f} ms  p99 total {total:7.1f} ms  (n={n})  " + " | ".join(cells)
    rows.append(line)
    print(line, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle", type=int, default=50)
    parser.add_argument("--slow-readers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=8)
    args = parser.parse_args()
    fake_port, proxy_port = free_port(), free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="codex-lb-soak-"))
    fake = subprocess.Popen(
        [sys.executable, "-m", "server.demo.fake_upstream", "--port", str(fake_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "CODEX_LB_DATA_DIR": str(data_dir),
        "CODEX_LB_UPSTREAM_BASE_URL": f"http://127.0.0.1:{fake_port}/backend-api",
        "CODEX_LB_AUTH_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "CODEX_LB_LOG_LEVEL": "WARNING",
        "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "64",
    }
    command = [sys.executable, "-m", "sanic", "server.app", "--host", "127.0.0.1", "--port", str(proxy_port)]
    command += ["--workers", str(args.workers), "--no-access-logs"]
    proxy = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    fake_url, url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{proxy_port}"
    stop = asyncio.Event()
    rows: list[str] = []
    stats = Stats()
    try:
        await wait_http(fake_url + "/__stats")
        await wait_http(url + "/health/ready")
        async with aiohttp.ClientSession() as session:
            defaults = {"defaults": {"deltas": 16, "delta_interval_ms": 5}}
            await session.post(fake_url + "/__config", data=orjson.dumps(defaults))
            form = aiohttp.FormData()
            for i in range(args.accounts):
                async with session.post(fake_url + "/__accounts", json={"account_id": f"soak_{i}"}) as r:
                    form.add_field("auth_json", orjson.dumps(await r.json()), filename=f"{i}.json")
            async with session.post(url + "/api/accounts/import", data=form) as r:
                assert r.status == 200, await r.text()
        await asyncio.sleep(3)  # every worker has reloaded its roster
        body = orjson.dumps(responses_body("soak prompt " * 20))
        print(
            f"soak: {args.minutes:g} min, {args.workers} workers, {args.clients} steady clients, "
            f"{args.idle} idle sockets, {args.slow_readers} slow readers",
            flush=True,
        )
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            load = [
                steady_client(session, url + "/v1/responses", body, stats, stop) for _ in range(args.clients)
            ]
            load += [idle_socket("127.0.0.1", proxy_port, stop) for _ in range(args.idle)]
            load += [slow_reader("127.0.0.1", proxy_port, body, stop) for _ in range(args.slow_readers)]
            running = [asyncio.create_task(c) for c in load]
            await asyncio.sleep(30)  # warm
            await sample("start", proxy.pid, url, stats, rows)
            end = time.monotonic() + args.minutes * 60 - 30
            minute = 1
            while time.monotonic() < end:
                await asyncio.sleep(min(60, max(0.0, end - time.monotonic())))
                await sample("end" if time.monotonic() >= end else f"{minute}m", proxy.pid, url, stats, rows)
                minute += 1
            stop.set()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        print(f"requests completed={stats.done} failed={stats.failed}")
    finally:
        os.killpg(proxy.pid, signal.SIGTERM)
        fake.terminate()
        proxy.wait(15)
        fake.wait(15)


if __name__ == "__main__":
    asyncio.run(main())
