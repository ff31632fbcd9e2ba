"""/api/accounts: the pool with each account's live state; adding accounts (auth.json import, browser
and device-code sign-in); account actions (pause, resume, rename, routing policy, delete, refresh,
re-authenticate, export)."""

from __future__ import annotations

import time

import orjson
from pony import orm
from sanic import Blueprint, Request
from sanic.response import json

from server.accounts import importing, store
from server.accounts.authjson import to_auth_json
from server.accounts.login import LoginError
from server.accounts.refresh import RefreshFailed
from server.api import proxies
from server.api.query_args import number_arg
from server.balancer.policies import RoutingPolicy
from server.balancer.slots import Field
from server.errors import BadRequest, NotFound, ProxyError
from server.proxy.normalize import parse_json_object
from server.runtime.control_characters import has_control_characters
from server.upstream.oauth import BROWSER_REDIRECT_URI
from server.usage import last_use

MAX_LABEL_CHARS = 100

bp = Blueprint("api_accounts")


@bp.get("/accounts")
async def list_accounts(request: Request):
    ctx = request.app.ctx.proxy
    accounts, last_used = await ctx.db.run(_accounts_and_last_use)
    now = time.time()
    # What holds for every account, read once: the live slot fields of all rows in one numpy gather, the
    # proxies' names for the egress routes.
    live = ctx.slots.rows[[a["slot"] for a in accounts]][:, _LIVE_FIELDS].tolist() if accounts else []
    names = proxies.proxy_names(ctx.upstream.egress)
    for account, fields in zip(accounts, live, strict=True):
        _add_live_state(ctx, account, fields, now, names)
        account["last_used_at"] = last_used.get(account["id"])
    return json({"accounts": accounts}, dumps=orjson.dumps)


@orm.db_session
def _accounts_and_last_use(db: orm.Database) -> tuple[list[dict], dict[int, float]]:
    """Both reads in one session: on PostgreSQL each session is a commit and a pool release more."""
    return store.public_accounts(db), last_use.of_all(db)


@bp.post("/accounts/import")
async def import_accounts(request: Request):
    ctx = request.app.ctx.proxy
    # Sanic logs a traceback when it parses a form without a multipart boundary: check the type first.
    is_multipart = "boundary=" in request.headers.get("content-type", "")
    uploads = request.files.getlist("auth_json") if is_multipart and request.files else None
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
    if importing.pool_full(results):
        raise PoolFullError(ctx.db.account_capacity, [r.public() for r in results])
    status = 200 if all(r.account for r in results) else (207 if any(r.account for r in results) else 400)
    return json(
        {
            "imported": [r.public() for r in results if r.account],
            "errors": [r.public() for r in results if not r.account],
        },
        status=status,
    )


class PoolFullError(ProxyError):
    """409: every slot of the shared table is taken (CODEX_LB_MAX_ACCOUNTS)."""

    status = 409
    code = "pool_full"

    def __init__(self, capacity: int, errors: list[dict]) -> None:
        super().__init__(
            f"The pool is full: codex-lb holds at most {capacity} accounts (CODEX_LB_MAX_ACCOUNTS)."
            " Delete an account, or raise CODEX_LB_MAX_ACCOUNTS and restart.",
            extra={"limit": capacity, "errors": errors},
        )


_LIVE_FIELDS = [
    Field.INFLIGHT,
    Field.COOLDOWN_UNTIL,
    Field.PRIMARY_USED,
    Field.PRIMARY_RESET_AT,
    Field.SECONDARY_USED,
    Field.SECONDARY_RESET_AT,
]


def _with_live_state(ctx, account: dict, now: float) -> dict:
    fields = [ctx.slots.get(account["slot"], field) for field in _LIVE_FIELDS]
    return _add_live_state(ctx, account, fields, now)


def _add_live_state(ctx, account: dict, fields: list[float], now: float, names=None) -> dict:
    inflight, cooldown, primary_used, primary_reset, secondary_used, secondary_reset = fields
    account["live"] = {
        "in_flight": int(inflight),
        "cooldown_until": cooldown if cooldown > now else None,
        "primary_used_percent": primary_used,
        "primary_reset_at": primary_reset or None,
        "secondary_used_percent": secondary_used,
        "secondary_reset_at": secondary_reset or None,
    }
    # Per-model limits (the backend's `codex_other` family…): the account may be out of one model's
    # bucket while serving the others.
    account["model_buckets"] = ctx.buckets.of_account(account["id"], now)
    # Its egress route, and why it cannot be routed when its proxy is down (fail closed).
    account["egress"] = proxies.account_route(ctx.upstream.egress, account["id"], now, names)
    return account


@bp.get("/accounts/<account_id:int>")
async def show_account(request: Request, account_id: int):
    ctx = request.app.ctx.proxy
    summary = await _account(ctx, account_id)
    answer = _with_live_state(ctx, summary.public(), time.time())
    answer["last_used_at"] = await ctx.db.run(last_use.of_account, account_id)
    answer["events"] = await ctx.db.run(store.account_events, account_id)
    return json(answer)


@bp.get("/accounts/<account_id:int>/usage-history")
async def usage_history(request: Request, account_id: int):
    ctx = request.app.ctx.proxy
    await _account(ctx, account_id)
    days = number_arg(request, "days", float, 1, 28) or 7.0
    rows = await ctx.db.run(store.usage_history, account_id, time.time() - days * 86400)
    return json({"account_id": account_id, "days": days, "history": rows})


@bp.patch("/accounts/<account_id:int>")
async def rename_account(request: Request, account_id: int):
    body = parse_json_object(request.body)
    label = body.get("label")
    if not isinstance(label, str) or len(label.strip()) > MAX_LABEL_CHARS or has_control_characters(label):
        raise BadRequest(
            f'"label" must be a string of at most {MAX_LABEL_CHARS} characters, no control characters.',
            param="label",
        )
    return await _act(request, account_id, store.set_label, label.strip())


@bp.put("/accounts/<account_id:int>/policy")
async def set_routing_policy(request: Request, account_id: int):
    """{"routing_policy": "normal" | "burn_first" | "preserve", "reserve_percent": 1-100 (preserve)}."""
    body = parse_json_object(request.body)
    try:
        policy = RoutingPolicy.parse(body.get("routing_policy"), body.get("reserve_percent"))
    except ValueError as exc:
        param = "reserve_percent" if "reserve_percent" in str(exc) else "routing_policy"
        raise BadRequest(f"{exc}.", param=param, code="invalid_routing_policy") from None
    return await _act(request, account_id, store.set_routing_policy, policy)


@bp.post("/accounts/<account_id:int>/pause")
async def pause_account(request: Request, account_id: int):
    return await _act(request, account_id, store.pause)


@bp.post("/accounts/<account_id:int>/resume")
async def resume_account(request: Request, account_id: int):
    return await _act(request, account_id, store.resume)


@bp.delete("/accounts/<account_id:int>")
async def delete_account(request: Request, account_id: int):
    ctx = request.app.ctx.proxy
    try:
        removed = await ctx.db.run(store.delete_account, account_id)
    except store.AccountNotFound:
        raise NotFound(f"No account {account_id}.") from None
    # A later account may take the slot: it starts clean, except for streams still running on it,
    # which release their in-flight count when they end.
    for field in Field:
        if field is not Field.INFLIGHT:
            ctx.slots.set(removed.slot, field, 0.0)
    ctx.roster.changed()
    await ctx.roster.reload()
    return json({"deleted": removed.id})


@bp.post("/accounts/<account_id:int>/refresh")
async def refresh_account(request: Request, account_id: int):
    """Refresh the tokens now (single-flight with any other refresher of this account)."""
    ctx = request.app.ctx.proxy
    await _account(ctx, account_id)
    tokens = await ctx.db.run(store.read_tokens, account_id, request.app.ctx.secretbox)
    try:
        await ctx.refresher.refresh(account_id, tokens.access_token)
    except RefreshFailed as exc:
        ctx.roster.changed()
        await ctx.roster.reload()
        status = 409 if exc.reauth_required else 502
        raise ProxyError(str(exc), status=status, code="refresh_failed") from None
    ctx.roster.changed()
    await ctx.roster.reload()
    return json(_with_live_state(ctx, (await _account(ctx, account_id)).public(), time.time()))


@bp.post("/accounts/<account_id:int>/reauth")
async def reauth_account(request: Request, account_id: int):
    """Sign in again (browser, or device code with {"method": "device"}); the new tokens replace the
    account's own, and a sign-in to a different ChatGPT account is refused."""
    body = parse_json_object(request.body) if request.body else {}
    return await _start_login(request, body.get("method", "browser"), account_id)


@bp.get("/accounts/<account_id:int>/export")
async def export_account(request: Request, account_id: int):
    """The account as a Codex auth.json for its owner; every export is recorded in the account's history."""
    ctx = request.app.ctx.proxy
    summary = await _account(ctx, account_id)
    tokens = await ctx.db.run(store.read_tokens, account_id, request.app.ctx.secretbox)
    await ctx.db.run(store.record_audit, account_id, f"exported auth.json to {request.ip or 'local'}")
    document = to_auth_json(
        tokens.access_token,
        tokens.refresh_token,
        tokens.id_token,
        summary.chatgpt_account_id,
        summary.last_refresh_at,
    )
    return json(
        document,
        headers={
            "content-disposition": f'attachment; filename="auth-{account_id}.json"',
            "cache-control": "no-store",
        },
    )


@bp.post("/accounts/oauth/start")
async def start_browser_login(request: Request):
    return await _start_login(request, "browser", None)


@bp.post("/accounts/device/start")
async def start_device_login(request: Request):
    return await _start_login(request, "device", None)


@bp.post("/accounts/oauth/complete")
async def complete_browser_login(request: Request):
    """Remote set-ups: the user pastes the address the browser ended on (localhost:1455/auth/callback?…)."""
    body = parse_json_object(request.body)
    callback_url = body.get("callback_url")
    if not isinstance(callback_url, str) or not callback_url.strip():
        raise BadRequest('"callback_url" must be the full address from the browser.', param="callback_url")
    try:
        done = await request.app.ctx.proxy.logins.complete_callback_url(callback_url)
    except LoginError as exc:
        raise BadRequest(str(exc), param="callback_url") from None
    return json(done.flow.public())


@bp.get("/accounts/oauth/<flow_id:str>")
async def browser_login_status(request: Request, flow_id: str):
    return await _flow_status(request, flow_id)


@bp.get("/accounts/device/<flow_id:str>")
async def device_login_status(request: Request, flow_id: str):
    return await _flow_status(request, flow_id)


async def _start_login(request: Request, method, reauth_account_id: int | None):
    ctx = request.app.ctx.proxy
    try:
        if method == "browser":
            flow, url = await ctx.logins.start_browser(reauth_account_id)
            answer = {**flow.public(), "authorize_url": url, "redirect_uri": BROWSER_REDIRECT_URI}
        elif method == "device":
            flow, url = await ctx.logins.start_device(reauth_account_id)
            answer = {**flow.public(), "verification_url": url, "interval": flow.poll_interval}
        else:
            raise BadRequest('"method" must be "browser" or "device".', param="method")
    except LoginError as exc:
        status = 404 if str(exc).startswith("no account") else 502
        raise ProxyError(str(exc), status=status, code="login_failed") from None
    return json(answer, status=201)


async def _flow_status(request: Request, flow_id: str):
    flow = await request.app.ctx.proxy.logins.status(flow_id)
    if flow is None:
        raise NotFound(f"No sign-in {flow_id}.")
    return json(flow.public())


async def _account(ctx, account_id: int) -> store.AccountSummary:
    try:
        return await ctx.db.run(store.get_account, account_id)
    except store.AccountNotFound:
        raise NotFound(f"No account {account_id}.") from None


async def _act(request: Request, account_id: int, action, *args):
    ctx = request.app.ctx.proxy
    try:
        await ctx.db.run(action, account_id, *args)
        summary = await ctx.db.run(store.get_account, account_id)
    except store.AccountNotFound:
        raise NotFound(f"No account {account_id}.") from None
    ctx.roster.changed()
    await ctx.roster.reload()
    return json(_with_live_state(ctx, summary.public(), time.time()))
