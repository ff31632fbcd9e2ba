"""An upstream answer being read: the `UpstreamStream` protocol both transports implement, and its HTTP
form, `SSEStream` (an aiohttp response carrying Server-Sent Events).

The WebSocket form is `server.upstream.websocket.SocketTurn`. Readers never ask which one they have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp

from server.upstream.sse import SSEEvent, SSEScanner


class UpstreamStream(Protocol):
    """The rest of an upstream answer, after what was read while opening it."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers (HTTP) or the socket's handshake headers (WebSocket)."""
        ...

    def chunks(self) -> AsyncIterator[tuple[bytes, list[SSEEvent]]]:
        """Each piece as it arrives, as SSE bytes to pass through unchanged (b"" for a reader that takes
        events only: a WebSocket client's turn), with the complete events it finished. Ends at the
        answer's end (or when it breaks: no terminal event then); a broken link may raise
        aiohttp.ClientError or TimeoutError."""
        ...

    def release(self) -> None:
        """The request is settled: give the connection back for reuse when the answer was read to its end,
        close it when not (which also stops the upstream generating for a client that left). Once."""
        ...

    def cut(self) -> None:
        """End the answer now, from outside its reader (the drain deadline): the reader sees it end."""
        ...


class SSEStream:
    """An HTTP response streaming SSE; `scanner` holds what was read while opening it."""

    __slots__ = ("response", "scanner")

    def __init__(self, response: aiohttp.ClientResponse, scanner: SSEScanner) -> None:
        self.response = response
        self.scanner = scanner

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    async def chunks(self) -> AsyncIterator[tuple[bytes, list[SSEEvent]]]:
        scanner = self.scanner
        async for chunk in self.response.content.iter_any():
            yield chunk, scanner.feed(chunk)

    def release(self) -> None:
        self.response.release()

    def cut(self) -> None:
        self.response.close()
