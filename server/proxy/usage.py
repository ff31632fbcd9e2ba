"""GET /v1/usage: what the calling API key has used and what its limits leave (always needs a key)."""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import json

from server.auth.guard import require_key
from server.keys import store

bp = Blueprint("key_usage")


@bp.get("/v1/usage")
async def key_usage(request: Request):
    key = require_key(request)
    ctx = request.app.ctx.proxy
    now = time.time()
    usage, totals_of = await ctx.db.run(store.figures, [key], now)
    totals = totals_of.get(key.id, store.KeyTotals())
    return json(
        {
            "object": "api_key.usage",
            "key": {
                "id": key.id,
                "name": key.name,
                "key_prefix": key.key_prefix,
                "expires_at": key.expires_at,
            },
            "request_count": totals.request_count,  # served: reached an account
            "refused_count": totals.refused_count,  # turned away by this key's limits or rules
            "total_tokens": totals.total_tokens,
            "cached_input_tokens": totals.cached_input_tokens,
            "total_cost_usd": round(totals.cost_usd, 6),
            "limits": [store.limit_status(rule, usage, now) for rule in key.limits],
        }
    )
