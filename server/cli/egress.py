"""`codex-lb proxies …`: define egress proxies and pools, test them, bind accounts, on the database
directly (no server needed; a running server picks the change up through the roster marker)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from server.accounts.keycheck import WrongEncryptionKey, verify_encryption_key
from server.config import Settings, prepare_data_dir
from server.db import Database
from server.egress import probe, store
from server.egress.routes import EgressRoutes
from server.egress.store import EgressError, ProxySpec
from server.runtime.secretbox import SecretBox, load_or_create_key


def add_arguments(commands) -> None:
    proxies = commands.add_parser(
        "proxies", help="egress proxies per account (http, https, socks5) and pools"
    )
    actions = proxies.add_subparsers(dest="proxies_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list proxies, their health and each account's route")
    listing.add_argument("--json", action="store_true", help="print JSON (what GET /api/proxies answers)")
    add = actions.add_parser("add", help="define a proxy, e.g. socks5://user:pass@10.0.0.2:1080")
    add.add_argument("name", help="a short name, e.g. office-nl")
    add.add_argument("url", help="http://, https:// or socks5:// host:port, credentials optional")
    add.add_argument("--pool", default="", help="put it in this pool (accounts bound to the pool share it)")
    add.add_argument("--weight", type=int, default=1, help="its share of the pool's accounts (default 1)")
    add.add_argument("--username", default="", help="proxy user name (instead of in the URL)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the proxy password from stdin's first line"
    )
    remove = actions.add_parser("remove", help="delete a proxy (no account may be bound to it)")
    remove.add_argument("name", help="the proxy's name or id")
    test = actions.add_parser("test", help="check a proxy: its exit address and latency")
    test.add_argument("name", help="the proxy's name or id")
    bind = actions.add_parser("bind", help="route an account through a proxy, a pool, or direct")
    bind.add_argument("account", type=int, metavar="ACCOUNT_ID")
    target = bind.add_mutually_exclusive_group(required=True)
    target.add_argument("--proxy", metavar="NAME", help="this proxy")
    target.add_argument("--pool", help="a proxy of this pool (by weight; the same one while it is up)")
    target.add_argument("--direct", action="store_true", help="no proxy (the default)")
    for sub in actions.choices.values():
        sub.add_argument("--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    prepare_data_dir(settings)
    box = SecretBox(load_or_create_key(settings.encryption_key_file))
    db = Database(settings)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, db.open)
    try:
        await loop.run_in_executor(None, verify_encryption_key, settings)
        return await _action(db, box, settings, args)
    except WrongEncryptionKey as exc:
        print(f"codex-lb: {exc}", file=sys.stderr)
        return 2
    except (EgressError, LookupError) as exc:
        print(f"codex-lb: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


async def _action(db: Database, box: SecretBox, settings: Settings, args: argparse.Namespace) -> int:
    command = args.proxies_command
    if command == "list":
        return await _list(db, box, args.json)
    if command == "add":
        password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else ""
        spec = ProxySpec.parse(args.name, args.url, args.pool, args.weight, args.username, password)
        created = await db.run(store.create, spec, box)
        print(
            f"proxy {created.id} {created.name}: {created.url}"
            + (f" pool={created.pool}" if created.pool else "")
        )
        return 0
    if command == "bind":
        proxy_id = await _find(db, args.proxy) if args.proxy else None
        binding = await db.run(store.bind, args.account, proxy_id, args.pool or "")
        print(f"account {args.account}: {binding.describe({proxy_id: args.proxy} if proxy_id else {})}")
        return 0
    proxy_id = await _find(db, args.name)
    if command == "remove":
        await db.run(store.delete, proxy_id)
        print(f"proxy {args.name} removed")
        return 0
    proxies, _ = await db.run(store.load, box)
    proxy = next(p for p in proxies if p.id == proxy_id)
    result, _ = await probe.check_and_record(db, proxy, settings.egress_probe_url)
    if result.ok:
        print(f"proxy {proxy.name}: ok exit_address={result.exit_address} latency_ms={result.latency_ms:.0f}")
        return 0
    print(f"proxy {proxy.name}: FAILED {result.detail} (after {result.latency_ms:.0f} ms)")
    return 1


async def _find(db: Database, name: str) -> int:
    proxy_id = await db.run(store.find, name)
    if proxy_id is None:
        raise LookupError(f"no proxy {name!r} (see `codex-lb proxies list`)")
    return proxy_id


async def _list(db: Database, box: SecretBox, as_json: bool) -> int:
    from server.accounts import importing
    from server.api.proxies import describe

    routes = EgressRoutes()
    routes.install(*await db.run(store.load, box))
    accounts = await importing.list_accounts(db)
    try:
        described = describe(routes, [a.id for a in accounts], time.time())
    finally:
        await routes.close()
    if as_json:
        print(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not described["proxies"]:
        print("no egress proxies: every account goes direct (add one with `codex-lb proxies add NAME URL`)")
    for p in described["proxies"]:
        check = p["check"]
        health = (
            ("up" if check["checked_at"] else "not checked yet") if p["up"] else f"DOWN ({p['down_reason']})"
        )
        seen = f" exit={check['exit_address']} {check['latency_ms']} ms" if check["exit_address"] else ""
        pool = f" pool={p['pool']} weight={p['weight']}" if p["pool"] else ""
        print(f"{p['id']:>3} {p['name']:<16} {p['url']:<32} {health}{pool}{seen}")
    for a in described["accounts"]:
        state = "" if a["available"] else f"  UNAVAILABLE: {a['reason']}"
        print(f"account {a['account_id']}: {a['bound_to']}{state}")
    return 0
