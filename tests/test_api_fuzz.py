"""Schemathesis over every /api/* operation of the OpenAPI description the server serves
(/api/openapi.json, made by sanic-ext): generated path parameters, queries and bodies never get a 5xx,
and every refusal has the dashboard API's error shape {"error": {"code", "message"}}. Then every number
and cursor the /api routes read from a query string, each tried with values no client should send."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

EXAMPLES_PER_OPERATION = 25
# Every numeric (or cursor) query parameter of every route; the contract test below keeps it complete.
QUERY_NUMBERS = {
    "/api/request-logs": ("since", "until", "account_id", "api_key_id", "limit", "cursor"),
    "/api/request-logs.csv": ("since", "until", "account_id", "api_key_id"),
    "/api/usage": ("since", "until", "top"),
    "/api/sessions": ("since", "until", "limit"),
    "/api/audit": ("since", "until", "limit", "before_id"),
    "/api/accounts/{account_id}/usage-history": ("days",),
}
HOSTILE_NUMBERS = (
    "99999999999999999999999", "-99999999999999999999999", "-1", "9" * 5000, "1e400", "-1e400",
    "nan", "NaN", "inf", "-Infinity", "abc", "0x10", "½",
    "1_99999999999999999999999", "1_-1", "nan_1", "inf_1", "-1_1", "1e400_1", "1.5_", "_",
)  # fmt: skip


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_api_operation_answers_a_server_error(proxy):
    await proxy.add_accounts("acc_fuzz")
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url + "/api/openapi.json") as response:
            spec = await response.json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    # Hypothesis and the client schemathesis drives are synchronous: run them off the server's loop.
    failures = await asyncio.to_thread(_fuzz, operations, proxy.url)
    assert not failures, "\n".join(failures[:20])


def _fuzz(operations, base_url: str) -> list[str]:
    failures: list[str] = []
    for operation in operations:
        if operation.path in ("/api/auth/password", "/api/auth/logout-all", "/api/auth/viewer-password"):
            continue  # would sign the fuzzer out (or lock it out) halfway; covered by test_dashboard_auth

        # Valid values, and values outside the description (ids beyond int32 and int64, strings…).
        strategy = operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=strategy)
        def run(case) -> None:
            response = case.call(base_url=base_url, timeout=10)
            label = f"{case.method} {case.formatted_path} {case.query or ''}"
            if response.status_code >= 500:
                failures.append(f"{label} -> {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) != {"error"} or not {"code", "message"} <= set(body["error"]):
                    failures.append(f"{label} -> {response.status_code} unexpected shape {body}")

        run()
    return failures


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_every_numeric_query_parameter_refuses_what_it_cannot_use_by_name(proxy):
    [account] = await proxy.add_accounts("acc_numbers")
    refused = []
    async with aiohttp.ClientSession() as session:
        for route, names in QUERY_NUMBERS.items():
            path = route.replace("{account_id}", str(account["id"]))
            for name in names:
                for value in HOSTILE_NUMBERS:
                    async with session.get(proxy.url + path, params={name: value}) as response:
                        body = await response.json(content_type=None)
                    error = body.get("error") if isinstance(body, dict) else None
                    if response.status != 400 or not error or error.get("param") != name:
                        refused.append(f"{path} {name}={value[:30]!r} -> {response.status} {str(body)[:120]}")
    assert not refused, "\n".join(refused[:20])


def test_the_fuzzed_parameters_are_every_number_a_route_reads():
    read = set()
    for source in Path("server").rglob("*.py"):
        text = source.read_text()
        read |= set(re.findall(r'number_arg\(request, "(\w+)"', text))
        read |= {"cursor"} if "Cursor.decode(raw_cursor)" in text else set()
    assert read == {name for names in QUERY_NUMBERS.values() for name in names}
