"""Request bodies as clients send them: plain, or compressed (the Codex CLI sends zstd with ChatGPT
auth; others may gzip). Decoded with a size cap, so a small compressed bomb cannot exhaust memory."""

from __future__ import annotations

import zlib

import zstandard
from sanic import Request

from server.errors import ProxyError, RequestTooLarge


def decoded_body(request: Request, limit: int) -> bytes:
    raw = request.body
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    try:
        if encoding == "zstd":
            return _capped(_zstd(raw, limit), limit)
        if encoding in ("gzip", "x-gzip", "deflate"):
            wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
            inflater = zlib.decompressobj(wbits)
            return _capped(inflater.decompress(raw, limit + 1), limit)
    except (zstandard.ZstdError, zlib.error):
        raise ProxyError(f"Request body is not valid {encoding} data.", code="invalid_body") from None
    raise ProxyError(
        f"Unsupported Content-Encoding {encoding!r}; send zstd, gzip, deflate or an uncompressed body.",
        status=415,
        code="unsupported_content_encoding",
    )


def _zstd(raw: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(raw)
    return reader.read(limit + 1)


def _capped(data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise RequestTooLarge("Request body is too large once decompressed.")
    return data
