"""Schemathesis over every /api/* operation of the OpenAPI description the server serves
(/api/openapi.json, made by sanic-ext): generated path parameters, queries and bodies never get a 5xx,
and every refusal has the dashboard API's error shape {"error": {"code", "message"}}."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
EXAMPLES_PER_OPERATION = 25


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
