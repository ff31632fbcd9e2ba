"""Operator sub-commands of `codex-lb` that work on the database directly (no server needed).

A running server notices their changes through the roster change marker within a couple of seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from server.accounts import flows, importing, report, store
from server.accounts.authjson import to_auth_json
from server.accounts.keycheck import WrongEncryptionKey, verify_encryption_key
from server.accounts.login import LoginError, LoginService
from server.accounts.refresh import RefreshFailed, TokenRefresher
from server.auth import audit
from server.balancer.policies import RoutingPolicy
from server.config import ConfigError, Settings, prepare_data_dir
from server.db import Database
from server.egress import store as egress_store
from server.egress.routes import EgressRoutes
from server.errors import ProxyError
from server.keys import store as key_store
from server.keys.spec import KeySpec
from server.runtime import leases, migrator
from server.runtime.control_characters import has_control_characters
from server.runtime.secretbox import SecretBox, load_or_create_key
from server.settings.database_url import redact_database_url


def in_one_line(run: Callable[[argparse.Namespace, Settings], int], args, settings: Settings) -> int:
    """Run a command; a setting or database it cannot use is one line on stderr, as `serve` says it."""
    try:
        return run(args, settings)
    except ConfigError as exc:
        print(f"codex-lb: configuration error: {exc}", file=sys.stderr)
    except migrator.SchemaTooNewError as exc:
        print(f"codex-lb: {' '.join(str(exc).split())}", file=sys.stderr)
    except migrator.CONNECT_ERRORS as exc:
        url = redact_database_url(settings.database_url)
        print(f"codex-lb: cannot open the database {url}: {' '.join(str(exc).split())}", file=sys.stderr)
    return 2


def run_accounts(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_accounts(args, settings))


async def _accounts(args: argparse.Namespace, settings: Settings) -> int:
    prepare_data_dir(settings)
    box = SecretBox(load_or_create_key(settings.encryption_key_file))
    db = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, db.open)
    try:
        # Tokens sealed with another key would be unreadable later: refuse before writing any.
        await asyncio.get_running_loop().run_in_executor(None, verify_encryption_key, settings)
    except WrongEncryptionKey as exc:
        db.close()
        print(f"codex-lb: {exc}", file=sys.stderr)
        return 2
    try:
        if args.accounts_command == "import":
            return await _import(db, box, args.paths)
        if args.accounts_command == "list":
            return await _list(db, args.json)
        if args.accounts_command == "login":
            return await _device_login(db, box, settings, args.reauth)
        return await _account_action(db, box, settings, args)
    except store.AccountNotFound as exc:
        print(f"codex-lb: no account {exc.args[0]}", file=sys.stderr)
        return 1
    finally:
        db.close()


async def _import(db: Database, box: SecretBox, paths: list[str]) -> int:
    files, failed = _read_files(paths)
    for result in await importing.import_files(db, box, files):
        if result.account is None:
            print(f"{result.source}: not imported: {result.error}", file=sys.stderr)
            failed += 1
        else:
            verb = "added" if result.created else "updated"
            account = result.account
            who = account.email or account.chatgpt_account_id
            print(
                f"{result.source}: {verb} account {account.id} ({who}, {account.plan_type or 'unknown plan'})"
            )
    return 1 if failed else 0


def _read_files(paths: list[str]) -> tuple[list[tuple[str, bytes]], int]:
    files, failed = [], 0
    for path in paths:
        try:
            files.append((path, Path(path).expanduser().read_bytes()))
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failed += 1
    return files, failed


async def _list(db: Database, as_json: bool) -> int:
    accounts = [account.public() for account in await importing.list_accounts(db)]
    if as_json:
        print(orjson.dumps({"accounts": accounts}, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not accounts:
        print("no accounts yet: codex-lb accounts import ~/.codex/auth.json (or codex-lb accounts login)")
        return 0
    for account in accounts:
        print(report.list_line(account))
    return 0


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_keys(args, settings))


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    try:
        spec = _key_spec(args) if args.keys_command == "create" else None
    except (ValueError, ProxyError) as exc:
        print(f"codex-lb keys: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    prepare_data_dir(settings)
    db = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, db.open)
    try:
        if args.keys_command == "create":
            key, secret_key = await db.run(key_store.create, spec)
            await audit.record_operator(db, "keys.create_key", f"key {key.id}")
            print(f"created key {key.id} ({key.name}); it is shown only now:")
            print(secret_key)
            return 0
        if args.keys_command == "revoke":
            return await _revoke(db, args.id, args.delete)
        return await _list_keys(db, args.json)
    except ProxyError as exc:
        print(f"codex-lb keys: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()


def _key_spec(args: argparse.Namespace) -> KeySpec:
    payload: dict = {"name": args.name, "limits": [_limit_rule(text) for text in args.limit]}
    if args.model:
        payload["allowed_models"] = args.model
    if args.account:
        payload["allowed_account_ids"] = args.account
    if args.expires_in_days is not None:
        payload["expires_at"] = time.time() + args.expires_in_days * 86400
    return KeySpec.parse(payload, creating=True)


def _limit_rule(text: str) -> dict:
    """`tokens/day=1000000`, optionally `@model` at the end."""
    rule, _, model = text.partition("@")
    kind, _, maximum = rule.partition("=")
    quantity, _, window = kind.partition("/")
    try:
        number = float(maximum)
    except ValueError:
        raise ValueError(
            f"--limit {text!r}: write QUANTITY/WINDOW=MAX[@MODEL], e.g. tokens/day=100000"
        ) from None
    spec = {"quantity": quantity.strip(), "window": window.strip(), "max": number}
    if model:
        spec["model"] = model.strip()
    return spec


async def _revoke(db: Database, key_id: int, delete: bool) -> int:
    if delete:
        await db.run(key_store.delete, key_id)
        await audit.record_operator(db, "keys.delete_key", f"key {key_id}")
        print(f"deleted key {key_id}")
    else:
        await db.run(key_store.update, key_id, KeySpec.parse({"enabled": False}, creating=False))
        await audit.record_operator(db, "keys.edit_key", f"key {key_id}", fields=["enabled"])
        print(f"disabled key {key_id}: requests with it are refused within a couple of seconds")
    return 0


async def _list_keys(db: Database, as_json: bool) -> int:
    keys = await db.run(key_store.load_keys)
    if as_json:  # what GET /api/api-keys answers
        shown = await db.run(key_store.describe, keys, time.time())
        print(orjson.dumps({"api_keys": shown}, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not keys:
        print('no API keys yet: codex-lb keys create "my laptop"')
        return 0
    now = time.time()
    usage = await db.run(key_store.current_usage, [rule.id for key in keys for rule in key.limits], now)
    for key in keys:
        state = "enabled" if key.enabled else "disabled"
        if key.expires_at is not None and key.expires_at <= now:
            state = "expired"
        limits = []
        for rule in key.limits:
            status = key_store.limit_status(rule, usage, now)
            limits.append(f"{rule.describe()} (used {status['used']:.10g})")
        print(f"{key.id:>4}  {state:<8} {key.key_prefix}…  {key.name}  {'; '.join(limits) or 'no limits'}")


async def _account_action(db: Database, box: SecretBox, settings: Settings, args: argparse.Namespace) -> int:
    command, account_id = args.accounts_command, args.id
    if command == "show":
        account = (await db.run(store.get_account, account_id)).public()
        events = await db.run(store.account_events, account_id)
        if args.json:
            print(orjson.dumps({**account, "events": events}, option=orjson.OPT_INDENT_2).decode())
        else:
            print("\n".join(report.show_lines(account, events, time.time())))
        return 0
    if command == "pause":
        account = await db.run(store.pause, account_id)
    elif command == "resume":
        account = await db.run(store.resume, account_id)
    elif command == "rename":
        if has_control_characters(args.label):
            print("codex-lb accounts rename: the label may not hold control characters", file=sys.stderr)
            return 2
        account = await db.run(store.set_label, account_id, args.label.strip()[:100])
    elif command == "policy":
        try:
            policy = RoutingPolicy.parse(args.policy, args.reserve)
        except ValueError as exc:
            message = str(exc).replace('"reserve_percent"', "--reserve")
            print(f"codex-lb accounts policy: {message}", file=sys.stderr)
            return 2
        account = await db.run(store.set_routing_policy, account_id, policy)
        await audit.record_operator(db, "accounts.set_routing_policy", f"account {account_id}")
        print(f"account {account.id}: routing policy {policy.describe()}")
        return 0
    elif command == "delete":
        account = await db.run(store.delete_account, account_id)
        await audit.record_operator(db, "accounts.delete_account", f"account {account_id}")
        print(f"deleted account {account.id} ({account.email or account.chatgpt_account_id})")
        return 0
    elif command == "export":
        return await _export(db, box, account_id, args.output)
    else:  # refresh
        return await _refresh(db, box, settings, account_id)
    await audit.record_operator(db, f"accounts.{command}_account", f"account {account_id}")
    print(f"account {account.id}: {account.status}" + (f" [{account.label}]" if account.label else ""))
    return 0


async def _export(db: Database, box: SecretBox, account_id: int, path: str) -> int:
    account = await db.run(store.get_account, account_id)
    tokens = await db.run(store.read_tokens, account_id, box)
    document = to_auth_json(
        tokens.access_token,
        tokens.refresh_token,
        tokens.id_token,
        account.chatgpt_account_id,
        account.last_refresh_at,
    )
    _write_private(path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    await db.run(store.record_audit, account_id, "exported auth.json with the codex-lb command")
    await audit.record_operator(db, "accounts.export_account", f"account {account_id}")
    print(f"wrote {path} (account {account_id}); it holds live tokens: keep it private")
    return 0


def _write_private(path: str, data: bytes) -> None:
    """Small and synchronous on purpose: the CLI has nothing else to do meanwhile."""
    fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode is ignored when the file already exists
    with os.fdopen(fd, "wb") as out:
        out.write(data)


async def _refresh(db: Database, box: SecretBox, settings: Settings, account_id: int) -> int:
    tokens = await db.run(store.read_tokens, account_id, box)
    refresher = TokenRefresher(db, box, settings.auth_base_url, leases.new_holder_id())
    routes = EgressRoutes()  # the refresh goes out by the account's route, as the server's would
    routes.install(*await db.run(egress_store.load, box))
    async with aiohttp.ClientSession() as session:
        refresher.session = session
        refresher.session_for = lambda account: routes.route(account).session or session
        try:
            await refresher.refresh(account_id, tokens.access_token)
        except RefreshFailed as exc:
            print(f"codex-lb: {exc}", file=sys.stderr)
            return 1
        finally:
            await routes.close()
    print(f"account {account_id}: tokens refreshed")
    return 0


async def _device_login(db: Database, box: SecretBox, settings: Settings, reauth: int | None) -> int:
    async def nothing() -> None:
        return None

    async with aiohttp.ClientSession() as session:
        logins = LoginService(db, box, settings.auth_base_url, lambda: session, nothing)
        try:
            flow, url = await logins.start_device(reauth)
        except LoginError as exc:
            print(f"codex-lb: {exc}", file=sys.stderr)
            return 1
        print(
            f"Open {url} and enter the code {flow.user_code} (valid {int(flow.expires_at - time.time())} s).",
            flush=True,  # the operator (or a script reading a pipe) needs the code now, not at exit
        )
        try:
            while True:
                current = await db.run(flows.get, flow.id)
                if current is not None and current.status not in (flows.PENDING, flows.EXCHANGING):
                    break
                await asyncio.sleep(0.2)
        finally:
            await logins.stop()
    if current.status != flows.COMPLETED:
        print(f"codex-lb: sign-in {current.status}: {current.error or 'no details'}", file=sys.stderr)
        return 1
    account = await db.run(store.get_account, current.account_id)
    print(f"signed in: account {account.id} ({account.email or account.chatgpt_account_id})")
    return 0
