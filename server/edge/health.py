"""Liveness and readiness probes for Docker, Kubernetes and PaaS health checks."""

from __future__ import annotations

import asyncio
import os

from sanic import Blueprint, Request
from sanic.response import json

from schema.migrations import latest_version
from server import db as database

bp = Blueprint("health", url_prefix="/health")


# HEAD too: uptime monitors and `curl -I` probe with it, and a 405 would read as "down".
@bp.route("/live", methods=["GET", "HEAD"])
async def live(request: Request):
    # Live asyncio tasks: a number that grows under steady load means something leaks (scripts/soak).
    return json({"status": "ok", "worker": os.getpid(), "tasks": len(asyncio.all_tasks())})


@bp.route("/ready", methods=["GET", "HEAD"])
async def ready(request: Request):
    expected = latest_version()
    try:
        version = await request.app.ctx.db.run(database.ping)
    except Exception as exc:  # any driver error means "not ready"; the probe must answer, not crash
        return json(
            {"status": "unavailable", "database": "unreachable", "detail": type(exc).__name__}, status=503
        )
    if version != expected:
        return json({"status": "unavailable", "database": "ok", "schema_version": version}, status=503)
    return json({"status": "ready", "database": "ok", "schema_version": version, "worker": os.getpid()})
