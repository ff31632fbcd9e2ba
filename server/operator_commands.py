"""Operator sub-commands of `codex-lb` that work on the database directly (no server needed).

A running server notices their changes through the roster change marker within a couple of seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.accounts import importing
from server.app import prepare_data_dir
from server.config import Settings
from server.db import Database
from server.secretbox import SecretBox, load_or_create_key


def run_accounts(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_accounts(args, settings))


async def _accounts(args: argparse.Namespace, settings: Settings) -> int:
    prepare_data_dir(settings)
    box = SecretBox(load_or_create_key(settings.encryption_key_file))
    db = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, db.open)
    try:
        if args.accounts_command == "import":
            return await _import(db, box, args.paths)
        return await _list(db)
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


async def _list(db: Database) -> int:
    accounts = await importing.list_accounts(db)
    if not accounts:
        print("no accounts yet: codex-lb accounts import ~/.codex/auth.json")
        return 0
    for account in accounts:
        print(
            f"{account.id:>4}  {account.status:<16} {account.plan_type:<10} "
            f"{account.email or account.chatgpt_account_id}"
        )
    return 0
