"""/api/proxies: egress proxies (credentials write-only), their pools and health, the "test" action, and
each account's route (PUT /api/accounts/<id>/egress)."""

from __future__ import annotations

import time

from sanic import Blueprint, Request
from sanic.response import json

from server.egress import probe, store
from server.egress.routes import load_into
from server.egress.store import EgressError, ProxySpec
from server.errors import BadRequest, NotFound
from server.proxy.normalize import parse_json_object

bp = Blueprint("api_proxies")


@bp.get("/proxies")
async def list_proxies(request: Request):
    ctx = request.app.ctx.proxy
    await _reload(request, notify=False)  # show what the database says now, not this worker's last copy
    return json(describe(ctx.upstream.egress, [a.id for a in ctx.roster.accounts], time.time()))


@bp.post("/proxies")
async def create_proxy(request: Request):
    body = parse_json_object(request.body)
    spec = _parse(
        lambda: ProxySpec.parse(
            _text(body, "name"),
            _text(body, "url"),
            pool=_text(body, "pool"),
            weight=_weight(body, 1),
            username=_text(body, "username"),
            password=_text(body, "password"),
        )
    )
    created = _parse_sync(await _run(request, store.create, spec, request.app.ctx.secretbox))
    await _reload(request)
    return json(created.public(), status=201)


@bp.patch("/proxies/<proxy_id:int>")
async def update_proxy(request: Request, proxy_id: int):
    body = parse_json_object(request.body)
    pool = _text(body, "pool") if "pool" in body else None
    weight = _weight(body, None)
    updated = _parse_sync(
        await _run(request, store.update, proxy_id, request.app.ctx.secretbox, pool, weight)
    )
    if updated is None:
        raise NotFound(f"No proxy {proxy_id}.")
    await _reload(request)
    return json(updated.public())


@bp.delete("/proxies/<proxy_id:int>")
async def delete_proxy(request: Request, proxy_id: int):
    if not _parse_sync(await _run(request, store.delete, proxy_id)):
        raise NotFound(f"No proxy {proxy_id}.")
    await _reload(request)
    return json({"deleted": proxy_id})


@bp.post("/proxies/<proxy_id:int>/test")
async def test_proxy(request: Request, proxy_id: int):
    """Ask the address-echo URL through the proxy: the exit address and the latency (also recorded)."""
    ctx = request.app.ctx.proxy
    await _reload(request, notify=False)
    proxy = next((p for p in ctx.upstream.egress.proxies if p.id == proxy_id), None)
    if proxy is None:
        raise NotFound(f"No proxy {proxy_id}.")
    result, changed = await probe.check_and_record(ctx.db, proxy, ctx.settings.egress_probe_url)
    await _reload(request, notify=changed)
    return json({"proxy": proxy.name, **result.public()})


@bp.put("/accounts/<account_id:int>/egress")
async def bind_account(request: Request, account_id: int):
    """{"proxy_id": N} or {"pool": "name"} or {} (direct)."""
    body = parse_json_object(request.body) if request.body else {}
    proxy_id = body.get("proxy_id")
    if proxy_id is not None and (not isinstance(proxy_id, int) or isinstance(proxy_id, bool)):
        raise BadRequest("proxy_id must be a proxy's id (or null)", param="proxy_id")
    pool = _text(body, "pool")
    if proxy_id is not None and pool:
        raise BadRequest("bind an account to a proxy or to a pool, not both", param="pool")
    try:
        binding = _parse_sync(await _run(request, store.bind, account_id, proxy_id, pool))
    except LookupError:
        raise NotFound(f"No account {account_id}.") from None
    await _reload(request)
    ctx = request.app.ctx.proxy
    return json(
        account_route(ctx.upstream.egress, account_id, time.time())
        | {"binding": binding.describe({p.id: p.name for p in ctx.upstream.egress.proxies})}
    )


def describe(egress, account_ids: list[int], now: float) -> dict:
    names = proxy_names(egress)
    proxies = []
    for proxy in egress.proxies:
        shown = proxy.public()
        reason = egress.down_reason(proxy, now)
        shown["up"] = reason is None
        shown["down_reason"] = reason
        shown["accounts"] = [
            i for i in account_ids if (b := egress.binding(i)) is not None and b.proxy_id == proxy.id
        ]
        proxies.append(shown)
    pools: dict[str, list[str]] = {}
    for proxy in egress.proxies:
        if proxy.pool:
            pools.setdefault(proxy.pool, []).append(proxy.name)
    return {
        "proxies": proxies,
        "pools": [{"name": name, "proxies": members} for name, members in sorted(pools.items())],
        "accounts": [account_route(egress, i, now, names) for i in account_ids],
    }


def account_route(egress, account_id: int, now: float, names: dict[int, str] | None = None) -> dict:
    """An account's binding and whether it can be routed now (with the reason when not). `names` (proxy
    id -> name) lets a caller describing every account build it once."""
    binding = egress.binding(account_id)
    if binding is None:
        return {
            "account_id": account_id,
            "bound_to": "direct",
            "proxy_id": None,
            "pool": "",
            "available": True,
            "reason": None,
            "route": "direct",
        }
    if names is None:
        names = proxy_names(egress)
    reason = egress.unavailable(account_id, now)
    return {
        "account_id": account_id,
        "bound_to": binding.describe(names),
        "proxy_id": binding.proxy_id,
        "pool": binding.pool,
        "available": reason is None,
        "reason": reason,
        "route": egress.route(account_id).label if reason is None else None,
    }


def proxy_names(egress) -> dict[int, str]:
    return {p.id: p.name for p in egress.proxies}


async def _run(request: Request, fn, *args):
    try:
        return await request.app.ctx.db.run(fn, *args)
    except EgressError as exc:
        return exc


def _parse_sync(result):
    if isinstance(result, EgressError):
        raise BadRequest(str(result), param=result.field)
    return result


def _parse(build):
    try:
        return build()
    except EgressError as exc:
        raise BadRequest(str(exc), param=exc.field) from None


def _text(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", param=name)
    return value


def _weight(body: dict, default):
    value = body.get("weight", default)
    if value is default:
        return value
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise BadRequest("weight must be a whole number from 1 to 1000", param="weight")
    return value


async def _reload(request: Request, notify: bool = True) -> None:
    """This worker uses the change at once; the others (and replicas) reload on the marker."""
    ctx = request.app.ctx.proxy
    await load_into(ctx.upstream.egress, ctx.db, request.app.ctx.secretbox)
    if notify:
        ctx.roster.changed()
