"""Benchmark of the fake upstream: its CPU time per streamed turn and the turns/s it serves.
Starts `python -m server.demo.fake_upstream` as a child, drives it with aiohttp, reads its CPU time
from /proc."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.demo.fake_upstream.client import bearer, parse_sse, responses_body  # noqa: E402
from server.demo.fake_upstream.runner import FakeUpstreamProcess  # noqa: E402

BETA = {"OpenAI-Beta": "responses_websockets=2026-02-06"}


def cpu_seconds(pid: int) -> float:
    """CPU time of a process (user + system); schedstat has ns precision where available."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_body(payload_kb: int) -> bytes:
    body = responses_body(
        "benchmark turn",
        prompt_cache_key="bench",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    body["instructions"] = "x" * (payload_kb * 1024)
    return orjson.dumps(body)


async def http_turns(
    session: aiohttp.ClientSession, url: str, headers: dict, body: bytes, count: int
) -> None:
    for _ in range(count):
        async with session.post(url, data=body, headers=headers) as answer:
            raw = await answer.read()
            if answer.status != 200 or not raw.endswith(b"\n\n"):
                raise RuntimeError(f"unexpected answer {answer.status}")


async def ws_turns(session: aiohttp.ClientSession, url: str, headers: dict, frame: bytes, count: int) -> None:
    async with session.ws_connect(url, headers={**headers, **BETA}, compress=0) as ws:
        for _ in range(count):
            await ws.send_str(frame.decode())
            while True:
                event = orjson.loads((await ws.receive()).data)
                if event["type"] in ("response.completed", "error"):
                    break


async def measure(
    fake: FakeUpstreamProcess, transport: str, total: int, concurrency: int, body: bytes
) -> dict:
    auth = await fake.create_account(f"acc_bench_{transport}")
    headers = {**bearer(auth), "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        if transport == "http":
            url = fake.base_url + "/codex/responses"
            probe = await session.post(url, data=body, headers=headers)
            assert parse_sse(await probe.read())[-1]["type"] == "response.completed"
            run = http_turns
            payload = body
        else:
            url = fake.ws_url
            frame = orjson.loads(body)
            frame.pop("stream")
            payload = orjson.dumps({"type": "response.create", **frame})
            run = ws_turns
        await asyncio.gather(
            *[run(session, url, headers, payload, 20) for _ in range(concurrency)]
        )  # warm-up
        per_worker = total // concurrency
        cpu_before, started = cpu_seconds(fake.pid), time.perf_counter()
        await asyncio.gather(*[run(session, url, headers, payload, per_worker) for _ in range(concurrency)])
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(fake.pid) - cpu_before
    done = per_worker * concurrency
    return {
        "transport": transport,
        "turns": done,
        "seconds": elapsed,
        "turns_per_s": done / elapsed,
        "fake_cpu_us_per_turn": cpu / done * 1e6,
        "fake_cpu_share": cpu / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--payload-kb", type=int, default=2, help="size of the instructions in each request")
    parser.add_argument("--transport", choices=["http", "websocket", "both"], default="both")
    args = parser.parse_args()
    body = request_body(args.payload_kb)
    transports = ["http", "websocket"] if args.transport == "both" else [args.transport]
    with FakeUpstreamProcess() as fake:
        for transport in transports:
            result = asyncio.run(measure(fake, transport, args.requests, args.concurrency, body))
            print(
                f"{result['transport']:>9}: {result['turns']} turns at concurrency {args.concurrency} "
                f"in {result['seconds']:.2f}s = {result['turns_per_s']:.0f} turns/s; fake CPU "
                f"{result['fake_cpu_us_per_turn']:.0f} us/turn ({result['fake_cpu_share']:.0%} of one core)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
