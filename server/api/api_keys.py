"""/api/api-keys: create, list, edit, delete and regenerate API keys (the secret is shown once)."""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import empty, json

from server.keys import store
from server.keys.spec import KeySpec
from server.keys.store import KeyRecord
from server.proxy.normalize import parse_json_object

bp = Blueprint("api_keys")


async def _answer(request: Request, keys: list[KeyRecord]) -> list[dict]:
    return await request.app.ctx.db.run(store.describe, keys, time.time())


async def _changed(request: Request) -> None:
    """This worker sees the change at once; the host's other workers at the next generation poll."""
    ctx = request.app.ctx.proxy
    await ctx.keys.reload()
    ctx.roster.changed()


@bp.post("/api-keys")
async def create_key(request: Request):
    spec = KeySpec.parse(parse_json_object(request.body), creating=True)
    key, secret_key = await request.app.ctx.db.run(store.create, spec)
    await _changed(request)
    return json(store.public(key, {}, store.KeyTotals(), time.time(), secret_key), status=201)


@bp.get("/api-keys")
async def list_keys(request: Request):
    keys = await request.app.ctx.db.run(store.load_keys)
    return json({"api_keys": await _answer(request, keys)})


@bp.patch("/api-keys/<key_id:int>")
async def edit_key(request: Request, key_id: int):
    spec = KeySpec.parse(parse_json_object(request.body), creating=False)
    key = await request.app.ctx.db.run(store.update, key_id, spec)
    await _changed(request)
    return json((await _answer(request, [key]))[0])


@bp.delete("/api-keys/<key_id:int>")
async def delete_key(request: Request, key_id: int):
    await request.app.ctx.db.run(store.delete, key_id)
    await _changed(request)
    return empty(status=204)


@bp.post("/api-keys/<key_id:int>/regenerate")
async def regenerate_key(request: Request, key_id: int):
    key, secret_key = await request.app.ctx.db.run(store.regenerate, key_id)
    await _changed(request)
    answer = (await _answer(request, [key]))[0]
    answer["key"] = secret_key
    return json(answer)
