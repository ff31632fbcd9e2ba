"""The error hierarchy and the one handler that renders errors in the shape each route's clients expect.

Every route answers OpenAI's error JSON {"error": {"message", "type", "code", "param"}}, the proxy routes
and the dashboard API alike. Unexpected exceptions never leak a traceback.
"""

from __future__ import annotations

import logging
import time

import orjson
from pony.orm.core import CommitException, OrmError, RollbackException
from pony.orm.dbapiprovider import InterfaceError, OperationalError
from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

log = logging.getLogger(__name__)

PROXY_PREFIXES = ("/v1/", "/backend-api/")


class ProxyError(Exception):
    """An error a client should see, with its HTTP status and OpenAI-style type and code."""

    status = 400
    type = "invalid_request_error"
    code: str | None = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        """The error as an HTTP client gets it (OpenAI's error JSON)."""
        error = {"message": self.message, "type": self.type, "code": self.code, "param": self.param}
        error.update(self.extra)
        return {"error": error}

    def ws_frame(self) -> str:
        """The error as a WebSocket client gets it: one `error` event frame, with the HTTP status."""
        return orjson.dumps({"type": "error", "status": self.status, **self.body()}).decode()


class BadRequest(ProxyError):
    status = 400


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class InternalError(ProxyError):
    status = 500
    type = "server_error"
    code = "server_error"

    def __init__(self, message: str = "The server had an error processing the request.") -> None:
        super().__init__(message)


class DatabaseUnavailable(ProxyError):
    """The database is busy (SQLite's write lock held past its timeout) or unreachable: retry soon."""

    status = 503
    type = "server_error"
    code = "database_unavailable"

    def __init__(self, message: str = "The database is busy or unreachable; retry in a moment.") -> None:
        super().__init__(message, headers={"retry-after": "2"})


class RequestTooLarge(ProxyError):
    status = 413
    code = "request_too_large"


class MalformedRequest(ProxyError):
    """A head Sanic's HTTP/1 parser refused (bad framing): answered before any route or auth rule."""

    status = 400
    code = "malformed_request"


class HeadersTooLarge(ProxyError):
    status = 431
    code = "headers_too_large"


class NoAccounts(ProxyError):
    """No account of the pool can serve the request now (none added, all paused, cooling down…)."""

    status = 503
    type = "server_error"
    code = "no_accounts"


class ModelNotSupported(ProxyError):
    status = 400
    code = "model_not_supported"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class UsageLimitReached(ProxyError):
    """The account (or every account) has spent its usage window; `resets_at` says until when."""

    status = 429
    type = "usage_limit_reached"
    code = "usage_limit_reached"

    def __init__(self, message: str, retry_at: float | None) -> None:
        super().__init__(
            message, headers=retry_after(retry_at), extra={"resets_at": int(retry_at) if retry_at else None}
        )


class RateLimited(ProxyError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        super().__init__(message, headers=retry_after(retry_at))


class UpstreamRejected(ProxyError):
    """The upstream refused the request itself (400…): the client sees its message, code and status."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message, status=status, code=code or "invalid_request_error")


class UpstreamFailed(ProxyError):
    """The upstream failed the request (every attempt, or the response itself)."""

    status = 502
    type = "server_error"
    code = "upstream_error"


class StreamIncomplete(UpstreamFailed):
    code = "stream_incomplete"

    def __init__(
        self,
        message: str = "The upstream stream ended before the response completed.",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)


def retry_after(retry_at: float | None) -> dict[str, str]:
    """The retry-after header for a wait until `retry_at` (none when it is unknown)."""
    if not retry_at:
        return {}
    return {"retry-after": str(max(1, int(retry_at - time.time() + 0.999)))}


_SANIC_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def render(request: Request, exception: Exception) -> HTTPResponse:
    if isinstance(exception, ProxyError):
        status, error = exception.status, exception
    elif is_database_unavailable(exception):
        log.warning("database unavailable path=%s error=%s", request.path, exception)
        error = DatabaseUnavailable()
        status = error.status
    elif isinstance(exception, SanicException):
        status = exception.status_code
        kind, code = _SANIC_TYPES.get(status, ("server_error", "server_error"))
        message = str(exception) if status < 500 else "The server had an error processing the request."
        if status == 413:
            message = "Request body is too large."
        elif status == 404 and message.startswith("Requested URL"):
            message = unknown_path_message(request)
        error = ProxyError(message, status=status, type=kind, code=code)
    else:
        log.exception("unhandled error path=%s", request.path)
        status = 500
        error = InternalError()
    return json(error.body(), status=status, headers=error.headers or None)


SERVED = (
    "codex-lb serves /v1/* (OpenAI API), /backend-api/codex/* (Codex CLI), /api/* (dashboard API, "
    "described at /api/openapi.json) and /health/*"
)


def unknown_path_message(request: Request) -> str:
    """Sanic's own text loses the path for `/` ("Requested URL  not found"): name it, and what exists."""
    path = request.path or "/"
    return f"Nothing is served at {request.method} {path}: {SERVED}."


def is_database_unavailable(exc: BaseException | None) -> bool:
    """A lock timeout or a lost connection: the driver's error as Pony wraps it, directly, in a commit's
    or a flush's error ("Object … cannot be stored in the database. OperationalError: …")."""
    driver = OperationalError | InterfaceError
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, driver):
            return True
        if isinstance(exc, CommitException | RollbackException):
            return any(isinstance(e[1], driver) for e in exc.exceptions)
        if isinstance(exc, OrmError) and any(isinstance(a, driver) for a in exc.args):
            return True
        exc = exc.__context__
    return False


def install(app: Sanic) -> None:
    app.error_handler.add(Exception, render)
