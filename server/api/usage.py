"""/api/request-logs, /api/usage and /api/sessions: the request history and usage the dashboard shows."""

from __future__ import annotations

import csv
import io
import time

from sanic import Blueprint, Request
from sanic.response import json

from server.api.query_args import number_arg
from server.errors import BadRequest, NotFound
from server.usage import browse, reports

bp = Blueprint("api_usage")
CSV_PAGE = 1000
MAX_ID = browse.MAX_ID
DEFAULT_SESSION_RANGE_S = 7 * 86400


def _text(request: Request, name: str) -> str:
    return (request.args.get(name) or "").strip()[:200]


def _filter(request: Request) -> browse.LogFilter:
    return browse.LogFilter(
        since=number_arg(request, "since"),
        until=number_arg(request, "until"),
        account_id=number_arg(request, "account_id", int, 0, MAX_ID),
        api_key_id=number_arg(request, "api_key_id", int, 0, MAX_ID),
        model=_text(request, "model"),
        status=_text(request, "status"),
        error_code=_text(request, "error_code"),
        transport=_text(request, "transport"),
        upstream_transport=_text(request, "upstream_transport"),
        route=_text(request, "route"),
        session=_text(request, "session"),
        request_id=_text(request, "request_id"),
    )


@bp.get("/request-logs")
async def list_request_logs(request: Request):
    spec = _filter(request)
    raw_cursor = _text(request, "cursor")
    cursor = browse.Cursor.decode(raw_cursor) if raw_cursor else None
    limit = number_arg(request, "limit", int, 1, browse.PAGE_MAX) or 50
    found = await request.app.ctx.db.run(browse.page, spec, limit, cursor)
    return json({"request_logs": found.rows, "next_cursor": found.next_cursor})


@bp.get("/request-logs/<log_id:int>")
async def read_request_log(request: Request, log_id: int):
    row = await request.app.ctx.db.run(browse.detail, log_id) if 0 < log_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"No request-log row {log_id}.")
    return json(row)


@bp.get("/request-logs.csv")
async def export_request_logs(request: Request):
    """Streamed page by page through the same cursor, so any filter and any size is one download."""
    spec, db = _filter(request), request.app.ctx.db
    response = await request.respond(
        content_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="request-logs.csv"'},
    )
    await response.send(_csv_lines([browse.FIELDS]))
    cursor = None
    while True:
        found = await db.run(browse.page, spec, CSV_PAGE, cursor)
        if found.rows:
            await response.send(_csv_lines([[row[f] for f in browse.FIELDS] for row in found.rows]))
        if found.next_cursor is None:
            break
        cursor = browse.Cursor.decode(found.next_cursor)
    await response.eof()


def _csv_lines(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it as text.
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row])
    return buffer.getvalue()


@bp.get("/usage")
async def read_usage(request: Request):
    now = time.time()
    bucket = _text(request, "bucket") or "hour"
    if bucket not in ("hour", "day"):
        raise BadRequest("'bucket' must be 'hour' or 'day'.", param="bucket", code="invalid_request")
    until = number_arg(request, "until") or now
    since = number_arg(request, "since")
    since = until - 86400 if since is None else since
    if since >= until:
        raise BadRequest("'since' must be before 'until'.", param="since", code="invalid_request")
    if bucket == "hour" and (until - since) / 3600 > reports.MAX_BUCKETS:
        raise BadRequest(
            "Too many hours: use bucket=day or a shorter range.", param="bucket", code="invalid_request"
        )
    split = _text(request, "split")
    if split and split not in reports.BREAKDOWNS:
        raise BadRequest(f"'split' must be one of {', '.join(reports.BREAKDOWNS)}.", param="split")
    top = number_arg(request, "top", int, 1, 100) or 20
    spec = reports.UsageQuery(split=split, since=since, until=until, bucket=bucket, top=top)
    return json(await reports.report(request.app.ctx.db, spec))


@bp.get("/sessions")
async def list_sessions(request: Request):
    until = number_arg(request, "until") or time.time()
    since = number_arg(request, "since")
    since = until - DEFAULT_SESSION_RANGE_S if since is None else since
    limit = number_arg(request, "limit", int, 1, browse.PAGE_MAX) or 100
    found = await request.app.ctx.db.run(browse.sessions, since, until, limit)
    return json({"sessions": found, "since": since, "until": until})


@bp.get("/sessions/<session>")
async def read_session(request: Request, session: str):
    found = await request.app.ctx.db.run(browse.session_turns, session[:200]) if session else None
    if found is None:
        raise NotFound(f"No session {session[:40]!r} in the request log.")
    return json(found)
