"""The fake's memory of recent requests (path, headers, parsed body, account, transport, status).
Owns the bounded ring buffer that `GET /__requests` serves to tests."""

from __future__ import annotations

import time
from collections import deque

DEFAULT_CAPACITY = 2000


class RequestLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[dict] = deque(maxlen=capacity)
        self._seq = 0

    def record(
        self,
        method: str,
        path: str,
        headers: object,
        *,
        query: object = None,
        body: object = None,
        account: str | None = None,
        transport: str = "http",
        kind: str = "request",
        peer: str | None = None,
    ) -> dict:
        """Append an entry; the caller may fill `status` (and `account`) later on the returned dict."""
        self._seq += 1
        entry = {
            "seq": self._seq,
            "time": time.time(),
            "kind": kind,
            "method": method,
            "path": path,
            "query": dict(query) if query else {},
            "headers": {k.lower(): v for k, v in headers.items()},  # type: ignore[attr-defined]
            "body": body,
            "account": account,
            "transport": transport,
            "status": None,
            "peer": peer,  # the connecting address: which egress route a request arrived by
        }
        self._entries.append(entry)
        return entry

    def last(self, limit: int, account: str | None = None, path: str | None = None) -> list[dict]:
        entries = [
            e
            for e in self._entries
            if (account is None or e["account"] == account) and (path is None or e["path"] == path)
        ]
        return entries[-limit:] if limit > 0 else entries

    def clear(self) -> None:
        self._entries.clear()
