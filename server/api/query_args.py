"""Query-string arguments of the /api routes, parsed into the one error shape when they are wrong."""

from __future__ import annotations

from sanic import Request

from server.errors import BadRequest


def number_arg(request: Request, name: str, kind=float, low: float = 0, high: float = 1e12):
    """The argument as a number within [low, high], or None when it is absent or empty."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number.", param=name, code="invalid_request") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' is out of range ({low}..{high}).", param=name, code="invalid_request")
    return value
