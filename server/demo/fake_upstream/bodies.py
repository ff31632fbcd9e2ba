"""Request bodies as the real backend accepts them: plain, or compressed with zstd (what the Codex CLI
sends) or gzip/deflate. aiohttp's own decompression is off because it cannot decode zstd."""

from __future__ import annotations

import zlib

import zstandard
from aiohttp import web

from .errors import invalid_request

MAX_DECODED_BYTES = 64 * 1024 * 1024


async def read_body(request: web.Request) -> bytes:
    raw = await request.read()
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    try:
        if encoding == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (zstandard.ZstdError, zlib.error):
        raise invalid_request(f"Request body is not valid {encoding} data") from None
    raise invalid_request(f"Unsupported Content-Encoding: {encoding}")
