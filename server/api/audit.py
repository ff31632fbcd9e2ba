"""/api/audit: the audit log, newest first, filtered by action, actor and time, paged by id."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import json

from server.api.query_args import number_arg
from server.auth import audit

bp = Blueprint("api_audit")


@bp.get("/audit")
async def read_audit(request: Request):
    spec = audit.AuditQuery(
        action=request.args.get("action", "")[:100],
        actor=request.args.get("actor", "")[:200],
        since=number_arg(request, "since"),
        until=number_arg(request, "until"),
        limit=number_arg(request, "limit", int, 1, audit.MAX_PAGE) or 100,
        before_id=number_arg(request, "before_id", int, 0, 2**62),
    )
    events, next_before_id = await request.app.ctx.db.run(audit.query, spec)
    return json({"events": events, "next_before_id": next_before_id})
