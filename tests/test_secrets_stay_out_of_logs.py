"""No token, key or password reaches a log line, even when requests fail, refresh and retry."""

from __future__ import annotations

import logging

from server.runtime.logs import redact
from tests.support.proxy import codex_body


def test_redact_masks_every_secret_shape():
    line = (
        "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2MifQ.c2lnbmF0dXJlX2hlcmU key=sk-clb-AbCdEf0123456789_xyz "
        "Authorization: Bearer abc.def-ghi refresh_token=rt_secret_value url=postgresql://u:hunter2@db/x"
    )
    cleaned = redact(line)
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "sk-clb-AbCdEf", "abc.def-ghi", "rt_secret_value", "hunter2"):
        assert secret not in cleaned
    assert "postgresql://u:***@db/x" in cleaned


def test_a_careless_log_call_is_redacted_by_the_handler(capfd):
    logging.getLogger("server.test").warning("leaked %s", "sk-clb-ShouldNeverAppear0123456789")
    assert "ShouldNeverAppear" not in capfd.readouterr().err


async def test_proxy_logs_carry_no_tokens(proxy, capfd):
    await proxy.add_accounts("acc_log", token_latency_ms=10)
    await proxy.fake.expire_tokens("acc_log")  # forces a refresh: new tokens pass through the proxy
    await proxy.post(
        "/backend-api/codex/responses", codex_body("hi"), {"Authorization": "Bearer sk-clb-client"}
    )
    await proxy.fake.configure_account("acc_log", failure_rate=1.0, failure_status=503)
    await proxy.post("/backend-api/codex/responses", codex_body("hi"))
    assert (await proxy.fake.account_stats("acc_log"))["refreshes"] == 1
    seen_tokens = {
        value.split(" ", 1)[1]
        for request in await proxy.fake.requests(limit=1000)
        for name, value in request["headers"].items()
        if name.lower() == "authorization" and " " in value
    }
    assert len(seen_tokens) >= 2  # the imported access token and the refreshed one
    output = capfd.readouterr()
    text = output.out + output.err
    for token in (*seen_tokens, "sk-clb-client"):
        assert token not in text
