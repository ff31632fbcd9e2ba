"""The dashboard's zod schemas and the server's answers, tied together through /api/openapi.json:
the answers it describes equal dashboard/tests/api-answers.json, which the dashboard's contract test
(dashboard/tests/apiContract.test.ts, run by `npm test`) checks every zod schema against; and what the
server really answers matches that description, field for field."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import jsonschema_rs

from server.api.answers import ANSWERS
from server.api.openapi import handler_name
from tests.support.api_answers import SNAPSHOT, answers, served_description
from tests.support.live_server import serve_in_process
from tests.support.settings import make_settings

REFRESH = "run `.venv/bin/python -m tests.support.api_answers`, then `npm test` in dashboard/"


async def test_the_dashboard_checks_its_schemas_against_the_answers_the_server_describes(tmp_path: Path):
    served = answers(await served_description(tmp_path / "data"))
    committed = json.loads(SNAPSHOT.read_text())
    changed = sorted(op for op in served.keys() | committed.keys() if served.get(op) != committed.get(op))
    assert not changed, f"the described answers of {changed} changed: {REFRESH}"


async def test_every_api_route_describes_its_answer(tmp_path: Path):
    async with serve_in_process(make_settings(tmp_path / "data")) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/openapi.json") as response:
                description = await response.json()
        handlers = {handler_name(route) for route in server.app.router.routes}
    operations = [f"{m.upper()} {p}" for p, ops in description["paths"].items() for m in ops]
    undescribed = sorted(set(operations) - set(answers(description)))
    assert not undescribed, f"describe the answers of {undescribed} in server/api/answers.py"
    assert set(ANSWERS) <= handlers, set(ANSWERS) - handlers


async def test_the_server_answers_as_it_describes(proxy):
    """Every read route with a busy pool behind it, and the writes that filled it."""
    description = answers(await _description(proxy.url))
    checked: list[tuple[str, object]] = []
    account, _ = await proxy.add_accounts("acc_shape_1", "acc_shape_2")
    await proxy.serve(3, session_key="shape-session")
    await proxy.request_logs(3)
    checked.append(("POST /api/accounts/import", {"imported": [account], "errors": []}))
    limit = {"quantity": "tokens", "window": "day", "max": 9}
    writes = [
        ("POST", "/api/api-keys", {"name": "k", "limits": [limit]}),
        ("POST", "/api/proxies", {"name": "shape-proxy", "url": "http://127.0.0.1:9", "pool": "p"}),
        ("PUT", f"/api/accounts/{account['id']}/egress", {"pool": "p"}),
        ("POST", f"/api/accounts/{account['id']}/pause", None),
    ]
    for method, path, body in writes:
        checked.append(await _call(proxy, method, path, body))
    [log] = (await _call(proxy, "GET", "/api/request-logs?limit=1"))[1]["request_logs"]
    since = int(time.time()) - 86400
    reads = [
        "/api/accounts",
        f"/api/accounts/{account['id']}",
        f"/api/accounts/{account['id']}/usage-history",
        "/api/api-keys",
        "/api/settings",
        "/api/settings/defaults",
        "/api/auth/status",
        "/api/auth/sessions",
        "/api/audit",
        "/api/request-logs",
        f"/api/request-logs/{log['id']}",
        f"/api/usage?since={since}&split=model",
        f"/api/usage?since={since - 86400 * 6}&bucket=day",
        f"/api/sessions?since={since}",
        f"/api/sessions/{log['session_key_hash']}",
        "/api/proxies",
    ]
    for path in reads:
        checked.append(await _call(proxy, "GET", path))
    problems = []
    for operation, body in checked:
        method, path = operation.split(" ")
        template = _template(method, path.split("?")[0], description)
        validator = jsonschema_rs.validator_for(_as_json_schema(description[template]["schema"]))
        problems += [f"{operation} {e.instance_path}: {e.message}"[:300] for e in validator.iter_errors(body)]
    assert not problems, "\n".join(problems[:20])


async def _description(url: str) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/openapi.json") as response:
            return await response.json()


async def _call(proxy, method: str, path: str, body: dict | None = None) -> tuple[str, object]:
    async with proxy.session.request(method, proxy.url + path, json=body) as response:
        assert response.status < 300, (method, path, response.status, await response.text())
        return f"{method} {path}", await response.json()


def _template(method: str, path: str, description: dict) -> str:
    """The described operation for a concrete path: the template with the fewest parameters that fits."""
    fits = []
    for operation in description:
        their_method, template = operation.split(" ")
        parts, ours = template.split("/"), path.split("/")
        same_shape = their_method == method and len(parts) == len(ours)
        if same_shape and all(p == o or p.startswith("{") for p, o in zip(parts, ours, strict=True)):
            fits.append((template.count("{"), operation))
    assert fits, f"{method} {path} is not described"
    return min(fits)[1]


def _as_json_schema(schema: dict) -> dict:
    """OpenAPI 3.0 to JSON Schema: `nullable` as a null branch, and every object closed unless it says
    otherwise, so a field the server sends but does not describe is caught too."""
    if not isinstance(schema, dict):
        return schema
    converted = {key: _as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if "properties" in converted:
        converted["properties"] = {name: _as_json_schema(s) for name, s in schema["properties"].items()}
        converted.setdefault("additionalProperties", False)
    if "items" in schema:
        converted["items"] = _as_json_schema(schema["items"])
    if schema.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted
