"""GET /metrics: Prometheus text for the whole host (every worker's counts summed), behind the metrics
token or dashboard sign-in; and the JSON log format."""

from __future__ import annotations

import json
import logging
import re
import time

import aiohttp
import pytest

from server.runtime.logs import JsonFormatter
from tests.conftest import make_settings
from tests.support.dashboard import REMOTE, TRUST_LOOPBACK_PROXY
from tests.support.live_server import ServerProcess, free_port, serve_in_process
from tests.support.proxy import CODEX_ROUTE, codex_body
from tests.test_lifecycle_drain import server_env, start_with_accounts
from tests.test_proxy_websocket import set_transport

SAMPLE = re.compile(r"^(codex_lb_\w+)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    """{'name{labels}': value} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


async def scrape(url: str, headers: dict | None = None) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection: any worker may answer
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url + "/metrics", headers=headers or {}) as answer:
            return answer.status, await answer.text()


async def test_metrics_count_requests_tokens_latency_and_account_windows(proxy):
    [account] = await proxy.add_accounts("acc_metrics")
    for _ in range(3):
        answer = await proxy.post(CODEX_ROUTE, codex_body("hi"))
        assert answer.status == 200
    missing = await proxy.post("/v1/responses", {"model": "no-such-model", "input": "hi"})
    status, text = await scrape(proxy.url)
    assert status == 200
    samples = parse(text)
    route = f'route="{CODEX_ROUTE}"'
    assert samples[f'codex_lb_requests_total{{{route},status="200",transport="http"}}'] == 3
    refused = f'route="/v1/responses",status="{missing.status}",transport="http"'
    assert samples[f"codex_lb_requests_total{{{refused}}}"] == 1
    assert samples["codex_lb_request_duration_seconds_count"] == 4
    assert samples['codex_lb_request_duration_seconds_bucket{le="+Inf"}'] == 4
    assert samples["codex_lb_upstream_ttft_seconds_count"] == 3
    assert samples["codex_lb_proxy_overhead_seconds_count"] == 3
    assert samples['codex_lb_tokens_total{kind="output"}'] > 0
    assert samples["codex_lb_cost_usd_total"] > 0
    assert samples[f'codex_lb_account_state{{account_id="{account["id"]}",state="active"}}'] == 1
    assert f'codex_lb_account_window_used_percent{{account_id="{account["id"]}",window="primary"}}' in samples
    assert "codex_lb_event_loop_lag_max_seconds" in samples
    assert "codex_lb_request_log_queue_depth" in samples


async def test_failovers_are_counted_by_reason(proxy):
    await proxy.add_accounts("acc_limited", rate_limited=True)
    await proxy.add_accounts("acc_fine")
    for i in range(4):
        answer = await proxy.post(CODEX_ROUTE, codex_body(f"hi {i}"), headers={"session-id": f"s{i}"})
        assert answer.status == 200
    samples = parse((await scrape(proxy.url))[1])
    assert samples['codex_lb_failovers_total{reason="rate_limit"}'] >= 1


async def test_metrics_need_the_token_or_a_dashboard_sign_in(tmp_path, database_url):
    settings = make_settings(
        tmp_path / "data", database_url, metrics_token="prometheus-secret-123", **TRUST_LOOPBACK_PROXY
    )
    remote = {"X-Forwarded-For": REMOTE}
    async with serve_in_process(settings) as server:
        assert (await scrape(server.url, remote))[0] == 401
        wrong = {**remote, "Authorization": "Bearer nope"}
        assert (await scrape(server.url, wrong))[0] == 401
        right = {**remote, "Authorization": "Bearer prometheus-secret-123"}
        status, text = await scrape(server.url, right)
        assert status == 200 and "# TYPE codex_lb_requests_total counter" in text
        # A proxy request refused at the door (not local, no key) is counted too.
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/v1/responses", json={}, headers=remote) as answer:
                assert answer.status == 401
        samples = parse((await scrape(server.url, right))[1])
        assert samples['codex_lb_requests_total{route="/v1/responses",status="401",transport="http"}'] == 1


async def test_the_metrics_port_answers_without_sign_in(tmp_path, database_url):
    port = free_port()
    settings = make_settings(tmp_path / "data", database_url, metrics_port=str(port), **TRUST_LOOPBACK_PROXY)
    async with serve_in_process(settings) as server:
        assert (await scrape(server.url, {"X-Forwarded-For": REMOTE}))[0] == 401  # the public port: no
        status, text = await scrape(f"http://127.0.0.1:{port}", {"X-Forwarded-For": REMOTE})
        assert status == 200 and "codex_lb_event_loop_lag_max_seconds" in text


@pytest.mark.slow
async def test_two_workers_report_the_same_host_wide_totals(tmp_path, fake_upstream):
    metrics_port = free_port()
    server = ServerProcess(server_env(tmp_path, fake_upstream, metrics_port=str(metrics_port)), workers=2)
    try:
        warm = await start_with_accounts(server, tmp_path, accounts=1)
        connector = aiohttp.TCPConnector(force_close=True)  # new connections reach both workers
        async with aiohttp.ClientSession(connector=connector) as session:
            for i in range(10):
                async with session.post(server.url + CODEX_ROUTE, json=codex_body(f"n{i}")) as answer:
                    assert answer.status == 200
                    await answer.read()
        prefix = f'codex_lb_requests_total{{route="{CODEX_ROUTE}",'
        counts = set()
        for url in [server.url] * 6 + [f"http://127.0.0.1:{metrics_port}"] * 6:
            # Several scrapes, answered by either worker, on either port: the same host-wide count.
            samples = parse((await scrape(url))[1])
            counts.add(sum(v for k, v in samples.items() if k.startswith(prefix)))
        assert counts == {10 + warm}
    finally:
        server.stop()


def test_json_log_lines_carry_the_access_fields_as_typed_values():
    record = logging.LogRecord(
        "server.proxy.access", logging.INFO, __file__, 1,
        'access request_id=req_1 route=/v1/responses transport=http upstream=http account=3 model=gpt-5.4 '
        'status=502 tokens=- latency_ms=12.5 attempts=2 error=upstream_error reason="boom \\"quoted\\""',
        None, None,
    )  # fmt: skip
    record.created = time.time()
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "access" and line["logger"] == "server.proxy.access"
    assert (line["request_id"], line["account"], line["status"], line["tokens"]) == ("req_1", 3, 502, None)
    assert line["latency_ms"] == 12.5 and line["reason"] == 'boom "quoted"'


async def test_the_request_id_goes_upstream_and_back_to_the_client(proxy):
    await proxy.add_accounts("acc_rid")
    await set_transport(proxy, "http")  # a pooled upstream WebSocket has no per-request headers
    answer = await proxy.post(CODEX_ROUTE, codex_body("hi"))
    request_id = answer.headers["X-Request-ID"]
    [turn] = (await proxy.turns())[-1:]
    sent = {k.lower(): v for k, v in turn["headers"].items()}
    assert sent["x-client-request-id"] == request_id
