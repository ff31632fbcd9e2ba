"""The audit log: who did what security-relevant thing, from where, to what. Owns the audit_event table.

Details hold names and numbers (which fields changed, how many sessions ended), never a value that could
be a secret. Dashboard API changes outside /api/auth are recorded by `record_api_change`, so a new
route is audited without its handler knowing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson
from pony import orm
from sanic import Request
from sanic.response import BaseHTTPResponse

from server.auth.clients import client_address

log = logging.getLogger(__name__)
MAX_PAGE = 500
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR = "operator (codex-lb command)"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str
    client_address: str
    action: str
    target: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    action: str = ""
    actor: str = ""
    since: float | None = None
    until: float | None = None
    limit: int = 100
    before_id: int | None = None


@orm.db_session(retry=3)
def record(db: orm.Database, event: AuditEvent) -> None:
    db.AuditEvent(
        at=time.time(),
        actor=event.actor[:200],
        client_address=event.client_address[:64],
        action=event.action[:100],
        target=event.target[:300],
        details=orjson.dumps(event.details).decode(),
    )


@orm.db_session
def query(db: orm.Database, spec: AuditQuery) -> tuple[list[dict], int | None]:
    rows = db.AuditEvent.select()
    if spec.action:
        action = spec.action
        rows = rows.filter(lambda e: e.action == action or e.action.startswith(action + "."))
    if spec.actor:
        actor = spec.actor
        rows = rows.filter(lambda e: e.actor == actor)
    if spec.since is not None:
        since = spec.since
        rows = rows.filter(lambda e: e.at >= since)
    if spec.until is not None:
        until = spec.until
        rows = rows.filter(lambda e: e.at < until)
    if spec.before_id is not None:
        before_id = spec.before_id
        rows = rows.filter(lambda e: e.id < before_id)
    page = list(rows.order_by(orm.desc(db.AuditEvent.id)).limit(spec.limit + 1))
    events = [
        {
            "id": row.id,
            "at": row.at,
            "actor": row.actor,
            "client_address": row.client_address,
            "action": row.action,
            "target": row.target,
            "details": orjson.loads(row.details),
        }
        for row in page[: spec.limit]
    ]
    return events, (events[-1]["id"] if len(page) > spec.limit else None)


def actor_of(request: Request) -> str:
    identity = getattr(request.ctx, "identity", None)
    return identity.actor if identity is not None else "anonymous"


async def write(request: Request, action: str, target: str = "", **details) -> None:
    event = AuditEvent(actor_of(request), client_address(request), action, target, details)
    await request.app.ctx.db.run(record, event)


async def record_operator(db, action: str, target: str = "", **details) -> None:
    """A change made with the `codex-lb` command on the host (db: server.db.Database)."""
    await db.run(record, AuditEvent(OPERATOR, "host", action, target, details))


async def record_api_change(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: a successful change through /api (or an export) becomes an audit event."""
    route = request.route
    if route is None or not request.path.startswith("/api/") or request.path.startswith("/api/auth/"):
        return
    if request.path.startswith("/api/audit") or not 200 <= response.status < 300:
        return
    handler = route.name.rsplit(".", 1)[-1]
    exporting = "export" in handler
    if request.method not in STATE_CHANGING and not exporting:
        return
    blueprint = route.name.split(".")[-2] if route.name.count(".") >= 2 else "api"
    action = f"{blueprint.removeprefix('api_')}.{handler}"
    try:
        await write(request, action, request.path, **_changed_fields(request))
    except Exception:  # the change happened; a lost audit row must not turn it into an error
        log.exception("audit write failed action=%s", action)


def _changed_fields(request: Request) -> dict:
    """Which fields a change named (never their values)."""
    content_type = request.headers.get("content-type", "")
    if request.body and content_type.startswith("application/json"):
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return {}
        if isinstance(payload, dict):
            return {"fields": sorted(str(name) for name in payload)}
    if content_type.startswith("multipart/form-data") and request.files:
        return {"files": sum(len(files) for files in request.files.values())}
    return {}
