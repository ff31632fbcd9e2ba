"""Which upstream transport a turn takes: HTTP SSE or the backend's WebSocket.

The setting (`CODEX_LB_UPSTREAM_STREAM_TRANSPORT`, overridden at run time by `upstream_stream_transport`)
is `http`, `websocket` or `auto`; `auto` picks a WebSocket for WebSocket clients, and for HTTP clients in
a conversation on a model that prefers it; HTTP otherwise. A backend that refuses upgrades (426) sends
`auto` and `websocket` to HTTP.
"""

from __future__ import annotations

import time

HTTP = "http"
WEBSOCKET = "websocket"
# Models the backend serves best over WebSockets (its catalog's `prefer_websockets`). One place to
# point at the model registry once it exists.
_PREFER_WEBSOCKETS_PREFIXES = ("gpt-5.4", "gpt-5.5", "gpt-5.6")
REFUSAL_MEMORY_S = 300.0


def prefers_websockets(model: str) -> bool:
    return model.startswith(_PREFER_WEBSOCKETS_PREFIXES)


class TransportChooser:
    """One per worker: applies the setting and remembers that the backend refused WebSockets (426)."""

    def __init__(self) -> None:
        self._refused_until = 0.0

    def choose(
        self,
        setting: str,
        *,
        client_websocket: bool,
        model: str,
        model_prefers: bool | None = None,
        conversation: bool = True,
    ) -> str:
        """`model_prefers`: the catalog's `prefer_websockets` (None: not in the catalog, use our list).
        `conversation`: the HTTP client marked a conversation; a one-off request gains nothing from an
        upstream socket (no later turn reuses it) and costs the proxy more than a plain POST."""
        if setting == HTTP or time.monotonic() < self._refused_until:
            return HTTP
        if setting == WEBSOCKET or client_websocket:
            return WEBSOCKET
        prefers = prefers_websockets(model) if model_prefers is None else model_prefers
        return WEBSOCKET if prefers and conversation else HTTP

    def upgrade_refused(self) -> None:
        """The backend answered an upgrade with 426: use HTTP for a while without asking again."""
        self._refused_until = time.monotonic() + REFUSAL_MEMORY_S
