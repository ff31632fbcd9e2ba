"""/api/accounts: the pool with each account's live state, and auth.json import."""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import json

from server.accounts import importing
from server.balancer.slots import Field
from server.errors import BadRequest

bp = Blueprint("api_accounts")


@bp.get("/accounts")
async def list_accounts(request: Request):
    ctx = request.app.ctx.proxy
    summaries = await importing.list_accounts(ctx.db)
    now = time.time()
    return json({"accounts": [_with_live_state(ctx, summary.public(), now) for summary in summaries]})


@bp.post("/accounts/import")
async def import_accounts(request: Request):
    ctx = request.app.ctx.proxy
    uploads = request.files.getlist("auth_json") if request.files else None
    if not uploads:
        raise BadRequest(
            'Upload one or more Codex auth.json files in the multipart field "auth_json".', param="auth_json"
        )
    results = await importing.import_files(
        ctx.db, request.app.ctx.secretbox, [(f.name, f.body) for f in uploads]
    )
    if any(r.account for r in results):
        ctx.roster.changed()
        await ctx.roster.reload()
    status = 200 if all(r.account for r in results) else (207 if any(r.account for r in results) else 400)
    return json(
        {
            "imported": [r.public() for r in results if r.account],
            "errors": [r.public() for r in results if not r.account],
        },
        status=status,
    )


def _with_live_state(ctx, account: dict, now: float) -> dict:
    slots = ctx.slots
    slot = account["slot"]
    cooldown = slots.get(slot, Field.COOLDOWN_UNTIL)
    account["live"] = {
        "in_flight": int(slots.get(slot, Field.INFLIGHT)),
        "cooldown_until": cooldown if cooldown > now else None,
        "primary_used_percent": slots.get(slot, Field.PRIMARY_USED),
        "primary_reset_at": slots.get(slot, Field.PRIMARY_RESET_AT) or None,
        "secondary_used_percent": slots.get(slot, Field.SECONDARY_USED),
        "secondary_reset_at": slots.get(slot, Field.SECONDARY_RESET_AT) or None,
    }
    return account
