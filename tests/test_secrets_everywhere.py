"""A tour of the server that creates every kind of secret (account tokens, refreshed tokens, API keys, a
dashboard password, wrong keys and passwords clients tried), then scans every log line and every
answer (status line, headers, body) for them. The only answers allowed to carry one are the two that
exist to hand it over: a key's creation (shown once) and an account's export."""

from __future__ import annotations

import logging

import aiohttp
import orjson
import pytest

from tests.support.proxy import CODEX_ROUTE, codex_body

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PASSWORD = "a dashboard password 4 tests"
WRONG_PASSWORD = "not the password, but secret too"
WRONG_KEY = "sk-clb-WrongButSecret0123456789abcdefghijkl"


class Recorder:
    """One client session whose answers are all kept for the scan."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.answers: list[tuple[str, bytes]] = []
        self.handovers: list[bytes] = []  # answers whose job is to hand a secret over

    async def call(self, method: str, path: str, body=None, headers=None, handover: bool = False) -> dict:
        data = orjson.dumps(body) if body is not None else None
        send = {"content-type": "application/json", **(headers or {})}
        async with self.session.request(method, self.base_url + path, data=data, headers=send) as r:
            raw = await r.read()
            record = f"{r.status} {dict(r.headers)}".encode() + b"\n" + raw
            (self.handovers if handover else self.answers).append((f"{method} {path}", record))
            try:
                return orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                return {}

    async def socket_turn(self, path: str, headers: dict) -> None:
        url = self.base_url.replace("http://", "ws://") + path
        async with self.session.ws_connect(url, headers=headers) as ws:
            frame = codex_body("over a socket")
            frame.pop("stream")
            await ws.send_str(orjson.dumps({"type": "response.create", **frame}).decode())
            while True:
                message = await ws.receive(timeout=10)
                self.answers.append((f"WS {path}", str(message.data).encode()))
                if orjson.loads(message.data)["type"] in ("response.completed", "response.failed", "error"):
                    break


async def test_no_secret_in_any_log_line_or_answer(proxy, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    imported = await proxy.add_accounts("acc_secret_1", "acc_secret_2", token_latency_ms=5)
    client = Recorder(proxy.url)
    try:
        key = await client.call("POST", "/api/api-keys", {"name": "tour"}, handover=True)
        other = await client.call("POST", "/api/api-keys", {"name": "tour 2"}, handover=True)
        renewed = await client.call("POST", f"/api/api-keys/{other['id']}/regenerate", handover=True)
        bearer = {"authorization": f"Bearer {key['key']}"}
        await proxy.fake.expire_tokens("acc_secret_1")  # a refresh mints new tokens mid-tour
        for path, body in (
            (CODEX_ROUTE, codex_body()),
            ("/v1/responses", {"model": "gpt-5.4", "input": "hi", "stream": True}),
            ("/v1/responses", {"model": "gpt-5.4", "input": "hi"}),
            ("/v1/chat/completions", {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/responses/compact", {"model": "gpt-5.4", "input": "hi", "instructions": ""}),
        ):
            await client.call("POST", path, body, bearer)
            await client.call("POST", path, body, {"authorization": f"Bearer {WRONG_KEY}"})
        await client.socket_turn(CODEX_ROUTE, bearer)
        for path in ("/v1/models", "/backend-api/codex/models?client_version=0.169.0", "/v1/usage"):
            await client.call("GET", path, headers=bearer)
        await client.call("PUT", "/api/settings", {"api_key_auth_enabled": True})
        await client.call("POST", CODEX_ROUTE, codex_body(), {"x-api-key": WRONG_KEY})
        await proxy.fake.configure_account("acc_secret_2", failure_rate=1.0, failure_status=503)
        await client.call("POST", CODEX_ROUTE, codex_body(), bearer)
        for path in ("/api/accounts", "/api/api-keys", "/api/settings", "/api/audit", "/api/auth/status"):
            await client.call("GET", path)
        for account in imported:
            await client.call("GET", f"/api/accounts/{account['id']}")
            await client.call("POST", f"/api/accounts/{account['id']}/refresh")
            await client.call("GET", f"/api/accounts/{account['id']}/export", handover=True)
        await client.call("POST", "/api/auth/password", {"new_password": PASSWORD})
        visitor = Recorder(proxy.url)
        try:
            await visitor.call("POST", "/api/auth/login", {"password": WRONG_PASSWORD})
            await visitor.call("POST", "/api/auth/login", {"password": PASSWORD})
            await visitor.call("GET", "/api/auth/sessions")
            await visitor.call("GET", "/api/accounts")
        finally:
            await visitor.session.close()
            client.answers.extend(visitor.answers)
    finally:
        await client.session.close()

    secrets = {key["key"], other["key"], renewed["key"], WRONG_KEY, PASSWORD, WRONG_PASSWORD}
    for request in await proxy.fake.requests(limit=2000):
        for name, value in request["headers"].items():
            if name == "authorization" and " " in value:
                secrets.add(value.split(" ", 1)[1])  # every access token the proxy used, refreshed too
        body = request.get("body")
        if isinstance(body, dict) and body.get("refresh_token"):
            secrets.add(body["refresh_token"])
    secrets.update(_tokens_of_exports(client.handovers))
    assert len(secrets) >= 10
    output = capfd.readouterr()
    logs = output.out + output.err + "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in logs, f"a secret reached the logs: {secret[:12]}…"
        for what, answer in client.answers:
            assert secret.encode() not in answer, f"{what} answered a secret: {secret[:12]}…"


def _tokens_of_exports(handovers: list[tuple[str, bytes]]) -> set[str]:
    found: set[str] = set()
    for what, record in handovers:
        if not what.endswith("/export"):
            continue
        body = orjson.loads(record.split(b"\n", 1)[1])
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if isinstance(tokens, dict):
            found.update(v for k, v in tokens.items() if k.endswith("_token") and isinstance(v, str))
    return found
