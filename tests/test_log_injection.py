"""No value can forge a log line or a field: a `key=` value with spaces or control characters is one JSON
string, control characters are escaped, a record's own further lines are indented; names people give
things (proxy, pool, key, account label) refuse control characters at the door."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from server.runtime.logs import TEXT_FORMAT, JsonFormatter, SafeLineFilter, sanic_log_config
from tests.support.keys import api
from tests.support.live_server import free_port

FORGED = "inj\nWARNING forged client=6.6.6.6"


def emitted(log_format: str, message: str, *args, exc_info: bool = False) -> str:
    """What the configured handler writes for one record (the same filter and formatters as the server)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SafeLineFilter())
    logger = logging.Logger("server.test")  # not registered: no other handler sees its records
    logger.addHandler(handler)
    logger.warning(message, *args, exc_info=exc_info)
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_proxy_name_cannot_forge_a_line_or_a_field(log_format):
    out = emitted(log_format, "egress proxy down proxy=%s reason=%s client=%s", FORGED, "timeout", "10.0.0.1")
    assert out.count("\n") == 1  # one record, one line
    if log_format == "json":
        line = orjson.loads(out)
        assert (line["proxy"], line["reason"], line["client"]) == (FORGED, "timeout", "10.0.0.1")
    else:
        assert 'proxy="inj\\nWARNING forged client=6.6.6.6" reason=timeout client=10.0.0.1' in out


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_control_characters_in_any_value_are_escaped(log_format):
    value = "nul\x00 cr\r esc\x1b[31m del\x7f nel\x85 ls\u2028 tab\t"
    out = emitted(log_format, "free text %s, then name=%s", value, value)
    text = orjson.loads(out)["msg"] if log_format == "json" else out
    assert out.count("\n") == 1
    for raw in ("\x00", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\t"):
        assert raw not in text, repr(raw)
    assert "nul\\x00 cr\\r esc\\x1b[31m del\\x7f nel\\x85 ls\\u2028 tab\\t" in text


def test_a_records_own_lines_stay_readable_and_indented():
    banner = emitted("text", "+-----+\n| hi  |\n+-----+")
    assert banner.splitlines()[1:] == ["  | hi  |", "  +-----+"]
    try:
        raise ValueError(f"bad {FORGED} sk-clb-NeverInALogLine0123456789")
    except ValueError:
        out = emitted("text", "job failed name=%s", "sync", exc_info=True)
    first, *rest = out.splitlines()
    assert first.endswith("job failed name=sync")
    assert rest[0] == "  Traceback (most recent call last):" and "  ValueError: bad inj" in rest
    assert all(line.startswith("  ") for line in rest)  # a reader or shipper splits records at column 0
    assert "NeverInALogLine" not in out


def test_every_sanic_handler_carries_the_filter():
    config = sanic_log_config("text")
    assert config["filters"]["safe_line"] == {"()": SafeLineFilter}
    assert all("safe_line" in handler["filters"] for handler in config["handlers"].values())


async def test_names_with_control_characters_are_refused_where_they_are_given(proxy):
    [account] = await proxy.add_accounts("acc_names")
    port = free_port()
    _, created = await api(
        proxy.url, "POST", "/api/proxies", {"name": "corp", "url": f"http://127.0.0.1:{port}"}
    )
    _, key = await api(proxy.url, "POST", "/api/api-keys", {"name": "laptop"})
    refused = [
        ("POST", "/api/proxies", {"name": FORGED, "url": f"http://127.0.0.1:{port}"}, "name"),
        ("POST", "/api/proxies", {"name": "nul\x00", "url": f"http://127.0.0.1:{port}"}, "name"),
        (
            "POST",
            "/api/proxies",
            {"name": "p2", "url": f"http://127.0.0.1:{port}", "pool": "\x1b[2J"},
            "pool",
        ),
        ("PATCH", f"/api/proxies/{created['id']}", {"pool": "eu\nWARNING x"}, "pool"),
        ("POST", "/api/api-keys", {"name": "key\r\nforged"}, "name"),
        ("PATCH", f"/api/api-keys/{key['id']}", {"name": "a\u2028b"}, "name"),
        ("PATCH", f"/api/accounts/{account['id']}", {"label": "seat\x00A"}, "label"),
    ]
    for method, path, body, param in refused:
        status, answer = await api(proxy.url, method, path, body)
        assert (status, answer["error"]["param"]) == (400, param), (method, path, body, answer)
    # Spaces, accents and emoji are names people give; only control characters are refused.
    for method, path, body in (
        ("POST", "/api/proxies", {"name": "Büro 2 🚀", "url": f"http://127.0.0.1:{port}", "pool": "eu west"}),
        ("PATCH", f"/api/api-keys/{key['id']}", {"name": "Ana's laptop"}),
        ("PATCH", f"/api/accounts/{account['id']}", {"label": "Seat A (team)"}),
    ):
        status, answer = await api(proxy.url, method, path, body)
        assert status in (200, 201), (method, path, answer)


async def test_a_proxy_name_with_spaces_is_one_quoted_value_in_the_health_line(proxy, caplog):
    name = "inj WARNING forged client=6.6.6.6"
    closed = f"http://127.0.0.1:{free_port()}"
    _, created = await api(proxy.url, "POST", "/api/proxies", {"name": name, "url": closed})
    status, result = await api(proxy.url, "POST", f"/api/proxies/{created['id']}/test")
    assert status == 200 and result["ok"] is False, result
    # The server's handler, which runs first, has rewritten the record every later handler formats.
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("egress proxy health")]
    assert line.startswith(f'egress proxy health proxy="{name}" ok=False detail="')
