"""The WebSocket upgrade of a client connection, with permessage-deflate when the client offers it.

Sanic's own handshake (WebSocketProtocol.websocket_handshake) never negotiates extensions; this is the
same handshake on the same Sanic protocol objects, with websockets' memory-lean deflate settings
(12-bit windows) offered. The Codex CLI offers permessage-deflate; conversations compress well.
"""

from __future__ import annotations

from sanic import Request
from sanic.exceptions import SanicException
from sanic.log import websockets_logger
from sanic.server.protocols.websocket_protocol import WebSocketProtocol
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.protocol import State
from websockets.server import ServerProtocol


class ClientWebsocket(WebsocketImplProtocol):
    """Sanic's WebSocket, failing a text frame that is not UTF-8 with close code 1007 (RFC 6455 §8.1):
    Sanic decodes it in a task of its own, whose error nobody awaits, and then drops the message."""

    async def process_events(self, events) -> None:
        try:
            await super().process_events(events)
        except UnicodeDecodeError:
            websockets_logger.info("WebSocket text frame is not UTF-8: closing with 1007")
            self.assembler.decoder = None
            self.fail_connection(1007, "Invalid UTF-8 in text frame")
            if self.recv_cancel:
                self.recv_cancel.cancel()


async def accept(request: Request, extra_headers: dict[str, str] | None = None) -> WebsocketImplProtocol:
    """Answer the upgrade (101, with `extra_headers`) and hand the connection to Sanic's WebSocket
    implementation."""
    protocol = request.transport.get_protocol()
    if not isinstance(protocol, WebSocketProtocol):  # e.g. under ASGI, whose server upgrades by itself
        raise SanicException("This WebSocket endpoint needs Sanic's own server.", status_code=500)
    ws_proto = ServerProtocol(
        extensions=enable_server_permessage_deflate(None),
        max_size=protocol.websocket_max_size,
        state=State.OPEN,
        logger=websockets_logger,
    )
    answer = ws_proto.accept(protocol.sanic_request_to_ws_request(request))
    if not 100 <= answer.status_code <= 299:
        raise SanicException(answer.body.decode("utf-8", "replace"), status_code=answer.status_code)
    for name, value in (extra_headers or {}).items():
        answer.headers[name] = value
    head = f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in answer.headers.raw_items())
    await protocol.send((head + "\r\n").encode())
    ws = ClientWebsocket(
        ws_proto,
        ping_interval=protocol.websocket_ping_interval,
        ping_timeout=protocol.websocket_ping_timeout,
        close_timeout=protocol.websocket_timeout,
    )
    protocol.websocket = ws
    await ws.connection_made(protocol)
    protocol.websocket_url = request.url
    protocol.websocket_peer = f"{request.client_ip}:{request.port}"
    protocol.log_websocket("OPEN")
    return ws
