"""Benchmark: the proxy against a direct connection to the fake upstream, on this machine.

Starts the fake upstream and `sanic server.app --workers N` as subprocesses on loopback, imports fake
accounts, then measures requests/s, p50/p99 latency and the proxy's CPU milliseconds per request for
streamed and non-streamed Responses calls (Codex route and /v1) and Chat Completions calls (translated
both ways) at several concurrencies, and prints the ratios.

    scripts/bench [--workers 2] [--requests 400] [--concurrency 1,16,64] [--accounts 16] [--ws-turns 20]
                  [--deltas 8]   (long concurrent turns: --concurrency 200 --deltas 200)

Its siblings measure other things: scripts/bench-workers (1 worker vs 4 vs 2 replicas),
scripts/bench-pool-size (3 vs 500 accounts, empty vs 1M-row log), scripts/bench-db-reads (the
management routes' database reads), scripts/bench-dashboard (the dashboard's history queries).

The WebSocket scenario keeps one socket per concurrent client and runs chained turns on it (each turn
names the previous response), through the proxy (upstream WebSockets) and directly against the fake,
and prints turns/s and the latency of a turn (frame sent to response.completed).
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
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.demo.fake_upstream.client import responses_body  # noqa: E402
from tests.support.live_server import free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    label: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    proxy_cpu_s: float | None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def process_tree_cpu(pid: int) -> float:
    """User+system CPU seconds of a process and all its descendants (from /proc)."""
    total = 0.0
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    stack = [pid]
    while stack:
        current = stack.pop()
        fields = stats.get(current)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        stack.extend(children.get(current, []))
    return total


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def run_load(
    url, body: bytes, headers: dict, total: int, concurrency: int, pid: int | None, label: str
):
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    counter = iter(range(total))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            for _ in counter:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{label}: HTTP {response.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, 4))))  # warm-up connections
        latencies.clear()
        counter = iter(range(total))
        cpu_before = process_tree_cpu(pid) if pid else None
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = process_tree_cpu(pid) - cpu_before if pid else None
    return Result(label, concurrency, total, seconds, latencies, cpu)


async def run_ws_load(
    url: str, headers: dict, turns: int, concurrency: int, pid: int | None, label: str
) -> Result:
    """`concurrency` sockets, each running `turns` chained turns; latency per turn."""
    latencies: list[float] = []
    frame = orjson.loads(orjson.dumps(responses_body("benchmark prompt " * 20)))
    frame.pop("stream", None)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await asyncio.gather(
            *(session.ws_connect(url, headers=headers) for _ in range(concurrency))
        )

        async def one_turn(ws, body: dict) -> str:
            started = time.perf_counter()
            await ws.send_str(orjson.dumps({"type": "response.create", **body}).decode())
            while True:
                message = await ws.receive(timeout=60)
                if message.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"{label}: socket ended ({message.type})")
                event = orjson.loads(message.data)
                if event["type"] == "response.completed":
                    latencies.append(time.perf_counter() - started)
                    return event["response"]["id"]
                if event["type"] in ("response.failed", "error"):
                    raise RuntimeError(f"{label}: {message.data[:300]}")

        async def client(ws, count: int) -> None:
            previous = None
            for n in range(count):
                body = {**frame, "previous_response_id": previous} if previous else frame
                if previous:
                    body = {**body, "input": [{"role": "user", "content": f"turn {n}"}]}
                previous = await one_turn(ws, body)

        await asyncio.gather(*(client(ws, 2) for ws in sockets))  # warm-up
        latencies.clear()
        cpu_before = process_tree_cpu(pid) if pid else None
        started = time.perf_counter()
        await asyncio.gather(*(client(ws, turns) for ws in sockets))
        seconds = time.perf_counter() - started
        cpu = process_tree_cpu(pid) - cpu_before if pid else None
        await asyncio.gather(*(ws.close() for ws in sockets))
    return Result(label, concurrency, turns * concurrency, seconds, latencies, cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--ws-turns", type=int, default=20, help="turns per socket in the WebSocket scenario")
    parser.add_argument("--deltas", type=int, default=8, help="text events per answer")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    fake_port, proxy_port = free_port(), free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="codex-lb-bench-"))
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
        "CODEX_LB_UPSTREAM_STREAM_TRANSPORT": os.environ.get("CODEX_LB_UPSTREAM_STREAM_TRANSPORT", "auto"),
        "CODEX_LB_ACCOUNT_INFLIGHT_CAP": "64",
    }
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sanic",
            "server.app",
            "--host",
            "127.0.0.1",
            "--port",
            str(proxy_port),
            "--workers",
            str(args.workers),
            "--no-access-logs",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    fake_url, proxy_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{proxy_port}"
    try:
        await wait_http(fake_url + "/__stats")
        await wait_http(proxy_url + "/health/ready")
        auths = []
        async with aiohttp.ClientSession() as session:
            defaults = {"defaults": {"deltas": args.deltas}}
            await session.post(fake_url + "/__config", data=orjson.dumps(defaults))
            form = aiohttp.FormData()
            for i in range(args.accounts):
                async with session.post(fake_url + "/__accounts", json={"account_id": f"bench_{i}"}) as r:
                    auth = await r.json()
                auths.append(auth)
                form.add_field("auth_json", orjson.dumps(auth), filename=f"{i}.json")
            async with session.post(proxy_url + "/api/accounts/import", data=form) as r:
                assert r.status == 200, await r.text()
        await asyncio.sleep(2)  # every worker has reloaded its roster

        stream_body = orjson.dumps(responses_body("benchmark prompt " * 20))
        json_body = orjson.dumps({"model": "gpt-5.4", "input": "benchmark prompt " * 20, "stream": False})
        v1_stream_body = orjson.dumps({"model": "gpt-5.4", "input": "benchmark prompt " * 20, "stream": True})
        chat_messages = [{"role": "user", "content": "benchmark prompt " * 20}]
        chat_stream_body = orjson.dumps(
            {
                "model": "gpt-5.4",
                "messages": chat_messages,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        chat_json_body = orjson.dumps({"model": "gpt-5.4", "messages": chat_messages})
        tokens = auths[0]["tokens"]
        direct_headers = {
            "authorization": f"Bearer {tokens['access_token']}",
            "chatgpt-account-id": tokens["account_id"],
            "content-type": "application/json",
        }
        rows = []
        for concurrency in concurrencies:
            total = max(args.requests, concurrency * 4)
            direct = await run_load(
                fake_url + "/backend-api/codex/responses",
                stream_body,
                direct_headers,
                total,
                concurrency,
                None,
                "direct",
            )
            streamed = await run_load(
                proxy_url + "/backend-api/codex/responses",
                stream_body,
                {"content-type": "application/json"},
                total,
                concurrency,
                proxy.pid,
                "proxy stream",
            )
            non_streamed = await run_load(
                proxy_url + "/v1/responses",
                json_body,
                {"content-type": "application/json"},
                total,
                concurrency,
                proxy.pid,
                "proxy json",
            )
            v1_streamed = await run_load(
                proxy_url + "/v1/responses",
                v1_stream_body,
                {"content-type": "application/json"},
                total,
                concurrency,
                proxy.pid,
                "v1 stream",
            )
            chat_streamed = await run_load(
                proxy_url + "/v1/chat/completions",
                chat_stream_body,
                {"content-type": "application/json"},
                total,
                concurrency,
                proxy.pid,
                "chat stream",
            )
            chat_json = await run_load(
                proxy_url + "/v1/chat/completions",
                chat_json_body,
                {"content-type": "application/json"},
                total,
                concurrency,
                proxy.pid,
                "chat json",
            )
            rows.append((direct, streamed, non_streamed, v1_streamed, chat_streamed, chat_json))
        ws_rows = []
        ws_direct_headers = {**direct_headers, "openai-beta": "responses_websockets=2026-02-06"}
        ws_direct_headers.pop("content-type")
        for concurrency in concurrencies:
            direct = await run_ws_load(
                f"ws://127.0.0.1:{fake_port}/backend-api/codex/responses",
                ws_direct_headers,
                args.ws_turns,
                concurrency,
                None,
                "ws direct",
            )
            proxied = await run_ws_load(
                f"ws://127.0.0.1:{proxy_port}/backend-api/codex/responses",
                {},
                args.ws_turns,
                concurrency,
                proxy.pid,
                "ws proxy",
            )
            ws_rows.append((direct, proxied))
        print_report(rows, args.workers)
        print_ws_report(ws_rows)
    finally:
        os.killpg(proxy.pid, signal.SIGTERM)
        fake.terminate()
        proxy.wait(15)
        fake.wait(15)


def print_report(rows, workers: int) -> None:
    cores = os.cpu_count()
    print(f"\ncodex-lb benchmark — {cores} cores, proxy with {workers} workers, fake upstream on loopback")
    columns = (
        ("route", "<14"),
        ("conc", ">5"),
        ("req/s", ">10"),
        ("p50 ms", ">9"),
        ("p99 ms", ">9"),
        ("cpu ms/req", ">12"),
        ("rate vs direct", ">16"),
    )
    header = "".join(f"{name:{spec}}" for name, spec in columns)
    print(header)
    print("-" * len(header))
    for direct, streamed, *others in rows:
        for result in (direct, streamed, *others):
            cpu = (
                f"{result.proxy_cpu_s * 1000 / result.requests:.2f}"
                if result.proxy_cpu_s is not None
                else "-"
            )
            ratio = f"{result.rate / direct.rate:.2f}x" if result is not direct else "1.00x"
            print(
                f"{result.label:<14}{result.concurrency:>5}{result.rate:>10.0f}{result.percentile(0.5):>9.2f}"
                f"{result.percentile(0.99):>9.2f}{cpu:>12}{ratio:>16}"
            )
        added = streamed.percentile(0.5) - direct.percentile(0.5)
        print(f"{'':<14}{'':>5}  added p50 latency (stream): {added:.2f} ms")
    print()


def print_ws_report(rows) -> None:
    print(
        "WebSocket turns (one socket per client, chained turns; latency = frame sent to response.completed)"
    )
    header = (
        f"{'route':<14}{'sockets':>8}{'turns/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cpu ms/turn':>13}{'vs direct':>11}"
    )
    print(header)
    print("-" * len(header))
    for direct, proxied in rows:
        for result in (direct, proxied):
            cpu = (
                f"{result.proxy_cpu_s * 1000 / result.requests:.2f}"
                if result.proxy_cpu_s is not None
                else "-"
            )
            ratio = f"{result.rate / direct.rate:.2f}x"
            print(
                f"{result.label:<14}{result.concurrency:>8}{result.rate:>10.0f}{result.percentile(0.5):>9.2f}"
                f"{result.percentile(0.99):>9.2f}{cpu:>13}{ratio:>11}"
            )
        added = proxied.percentile(0.5) - direct.percentile(0.5)
        print(f"{'':<22}  added p50 latency per turn: {added:.2f} ms")
    print()


if __name__ == "__main__":
    asyncio.run(main())
