"""/api/settings: the run-time settings the dashboard's Settings page reads and changes."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import json

from server import runtime_settings
from server.proxy.normalize import parse_json_object

bp = Blueprint("api_settings")


@bp.get("/settings")
async def read_settings(request: Request):
    return json(request.app.ctx.proxy.runtime.current.public())


@bp.get("/settings/defaults")
async def read_setting_defaults(request: Request):
    """What each setting is when nothing is stored: the CODEX_LB_* environment's values."""
    return json(request.app.ctx.proxy.runtime.defaults.public())


@bp.put("/settings")
async def change_settings(request: Request):
    ctx = request.app.ctx.proxy
    changes = runtime_settings.parse_changes(parse_json_object(request.body))
    updated = await ctx.runtime.update(changes)
    ctx.roster.changed()  # the other workers of this host reload at once
    return json(updated.public())
