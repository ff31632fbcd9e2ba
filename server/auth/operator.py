"""`codex-lb dashboard …`: the host operator's way back in (set the password, turn TOTP off, show the
bootstrap token). Works on the database directly; running servers notice within a couple of seconds.
Imports are deferred so that `codex-lb --help` stays quick."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from server.config import Settings


def add_arguments(commands) -> None:
    dashboard = commands.add_parser("dashboard", help="dashboard sign-in, for an operator on the host")
    actions = dashboard.add_subparsers(dest="dashboard_command", metavar="ACTION", required=True)
    password = actions.add_parser(
        "set-password", help="set the dashboard password (ends every session); asks for it twice"
    )
    password.add_argument("--viewer", action="store_true", help="set the read-only viewer password instead")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    actions.add_parser("reset-totp", help="turn two-factor sign-in off (and drop the recovery codes)")
    actions.add_parser(
        "show-bootstrap-token", help="print the one-time token that sets the first password remotely"
    )
    for sub in actions.choices.values():
        sub.add_argument("--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from server.auth import credentials as cred

    if args.dashboard_command == "set-password":
        password = _read_password(args.password_stdin, cred)
        if password is None:
            return 2
        return asyncio.run(_with_database(settings, _set_password, password, args.viewer))
    if args.dashboard_command == "reset-totp":
        return asyncio.run(_with_database(settings, _reset_totp))
    return asyncio.run(_with_database(settings, _show_bootstrap_token, settings))


def _read_password(from_stdin: bool, cred) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New dashboard password: ")
        if getpass.getpass("Again: ") != password:
            print("codex-lb: the two passwords differ; nothing changed", file=sys.stderr)
            return None
    problem = cred.password_problem(password)
    if problem:
        print(f"codex-lb: {problem} Nothing changed.", file=sys.stderr)
        return None
    return password


async def _with_database(settings: Settings, action, *args) -> int:
    from server.config import prepare_data_dir
    from server.db import Database
    from server.runtime.secretbox import SecretBox, load_or_create_key

    prepare_data_dir(settings)
    box = SecretBox(load_or_create_key(settings.encryption_key_file))
    db = Database(settings)
    await asyncio.get_running_loop().run_in_executor(None, db.open)
    try:
        return await action(db, box, *args)
    finally:
        db.close()


async def _set_password(db, box, password: str, viewer: bool) -> int:
    from server.auth import audit, store
    from server.auth import credentials as cred

    password_hash = await asyncio.to_thread(cred.hash_password, password)
    if viewer:
        ended = await db.run(store.set_viewer_password, password_hash)
        action, who = "auth.viewer_password_changed", "viewer"
    else:
        ended = await db.run(store.set_admin_password, password_hash, None)
        action, who = "auth.password_changed", "dashboard"
    await audit.record_operator(db, action, sessions_ended=ended)
    print(f"{who} password set; {ended} session(s) ended")
    return 0


async def _reset_totp(db, box) -> int:
    from server.auth import audit, store

    await db.run(store.disable_totp)
    await audit.record_operator(db, "auth.totp_disabled")
    print("two-factor sign-in is off; the password alone signs in (turn it on again in the dashboard)")
    return 0


async def _show_bootstrap_token(db, box, settings: Settings) -> int:
    from server.auth import credentials as cred
    from server.auth import store

    if settings.dashboard_bootstrap_token:
        print(settings.dashboard_bootstrap_token)
        print("(fixed by CODEX_LB_DASHBOARD_BOOTSTRAP_TOKEN)", file=sys.stderr)
        return 0
    if (await db.run(store.load_credentials)).password_set:
        print(
            "codex-lb: a dashboard password is set, so there is no bootstrap token; locked out? "
            "`codex-lb dashboard set-password`",
            file=sys.stderr,
        )
        return 1
    sealed = await db.run(store.sealed_bootstrap_token)
    if not sealed:  # the server has not started yet: make the token it will accept
        token = cred.new_token(24)
        await db.run(store.claim_bootstrap_token, cred.digest(token), box.encrypt(token))
        sealed = await db.run(store.sealed_bootstrap_token)
    print(box.decrypt(sealed))
    return 0
