"""Heads Sanic's parser refuses, over raw sockets: bad framing is a 400 and a head past the size limit a 431,
in the error shape of every route, before any auth rule; the connection closes after the answer.
"""

from __future__ import annotations

import asyncio

import orjson

FRAMING_ERRORS = {
    "negative length": "Content-Length: -5\r\n",
    "length and chunked": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "two lengths": "Content-Length: 5\r\nContent-Length: 6\r\n",
    "unknown coding": "Transfer-Encoding: gzip\r\n",
}
ROUTES = ("/api/api-keys", "/api/auth/login", "/v1/responses", "/backend-api/codex/responses")


async def exchange(url: str, raw: bytes) -> tuple[int, dict, bytes, bytes]:
    """Send raw bytes; status, headers and body of the first answer, and whatever follows it before the
    server closes the connection (a timeout if it never does)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", len(rest)))
    return int(lines[0].split()[1]), headers, rest[:length], rest[length:]


def request_head(method: str, path: str, port: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


async def test_framing_errors_are_400_before_any_auth_rule(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    for name, headers in FRAMING_ERRORS.items():
        for path in ROUTES:
            raw = request_head("POST", path, port, "Content-Type: application/json\r\n" + headers) + b"{}"
            status, answer_headers, body, _ = await exchange(live_server.url, raw)
            assert status == 400, (name, path, body)
            error = orjson.loads(body)["error"]
            assert (error["type"], error["code"]) == ("invalid_request_error", "malformed_request"), path
            assert answer_headers.get("connection") == "close", (name, path)


async def test_a_smuggled_request_behind_length_and_chunked_is_never_answered(live_server):
    """Content-Length and Transfer-Encoding together: one 400, then the connection closes, so the request
    hidden in the body is never read as a second one."""
    port = live_server.url.rsplit(":", 1)[1]
    body = b"0\r\n\r\n" + request_head("GET", "/api/settings", port)
    smuggling = f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n"
    for path in ROUTES:
        status, _, answer, after = await exchange(
            live_server.url, request_head("POST", path, port, smuggling) + body
        )
        assert status == 400, (path, answer)
        assert after == b"", path


async def test_a_header_over_the_limit_is_431(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    for path in ROUTES:
        raw = request_head("POST", path, port, f"X-Filler: {'a' * 9000}\r\nContent-Length: 2\r\n") + b"{}"
        status, headers, body, _ = await exchange(live_server.url, raw)
        assert status == 431, (path, body)
        assert orjson.loads(body)["error"]["code"] == "headers_too_large", path
        assert headers.get("connection") == "close", path
