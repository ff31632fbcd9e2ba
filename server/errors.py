"""The error hierarchy and the one handler that renders errors in the shape each route's clients expect.

Every route answers OpenAI's error JSON {"error": {"message", "type", "code", "param"}}, the proxy routes
and the dashboard API alike. Unexpected exceptions never leak a traceback.
"""

from __future__ import annotations

import logging

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
        error = {"message": self.message, "type": self.type, "code": self.code, "param": self.param}
        error.update(self.extra)
        return {"error": error}


class BadRequest(ProxyError):
    status = 400


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class DatabaseUnavailable(ProxyError):
    """The database is busy (SQLite's write lock held past its timeout) or unreachable: retry soon."""

    status = 503
    type = "server_error"
    code = "database_unavailable"

    def __init__(self, message: str = "The database is busy or unreachable; retry in a moment.") -> None:
        super().__init__(message, headers={"retry-after": "2"})


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
        error = ProxyError(
            "The server had an error processing the request.",
            status=500,
            type="server_error",
            code="server_error",
        )
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
