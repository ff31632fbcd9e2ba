"""/api/audit: the audit log, newest first, filtered by action, actor and time, paged by id."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import json

from server.auth import audit
from server.errors import BadRequest

bp = Blueprint("api_audit")


def _number(request: Request, name: str, kind=float, low: float = 0, high: float = 1e12):
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


@bp.get("/audit")
async def read_audit(request: Request):
    spec = audit.AuditQuery(
        action=request.args.get("action", "")[:100],
        actor=request.args.get("actor", "")[:200],
        since=_number(request, "since"),
        until=_number(request, "until"),
        limit=_number(request, "limit", int, 1, audit.MAX_PAGE) or 100,
        before_id=_number(request, "before_id", int, 0, 2**62),
    )
    events, next_before_id = await request.app.ctx.db.run(audit.query, spec)
    return json({"events": events, "next_before_id": next_before_id})
