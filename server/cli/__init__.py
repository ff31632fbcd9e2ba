"""The `codex-lb` console command: start the server (the default) and, later, operator sub-commands.

`codex-lb serve` execs the same `sanic server.app` command users and the Procfile run, so there is one
way the server starts; CLI flags travel to the worker processes as CODEX_LB_* variables.
"""

from __future__ import annotations

import argparse
import os
import sys

from server.config import ConfigError, Settings, export_overrides
from server.runtime.startup import warn_about_variables


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-lb",
        description="Pool several ChatGPT (Codex) accounts behind one OpenAI-compatible endpoint.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="start the server (the default command)")
    _add_serve_options(serve)
    serve.add_argument("--check", action="store_true", help="only check the settings (one line per problem)")
    _add_serve_options(parser)
    accounts = commands.add_parser("accounts", help="manage pooled ChatGPT accounts")
    account_commands = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    importer = account_commands.add_parser(
        "import", help="import Codex auth.json files (an account already present gets the new tokens)"
    )
    importer.add_argument("paths", nargs="+", metavar="PATH", help="auth.json files, e.g. ~/.codex/auth.json")
    listing = account_commands.add_parser("list", help="list the pooled accounts, their states and usage")
    listing.add_argument("--json", action="store_true", help="print JSON (what GET /api/accounts answers)")
    account_commands.add_parser(
        "login", help="add an account by device code: prints a code to enter at the sign-in page"
    ).add_argument("--reauth", type=int, metavar="ID", help="sign in again for this account (new tokens)")
    for action, text in (
        ("show", "show one account with its state history"),
        ("pause", "take an account out of routing until resumed"),
        ("resume", "put a paused (or benched) account back into routing"),
        ("refresh", "refresh an account's tokens now"),
        ("delete", "remove an account and its tokens (request logs keep its number only)"),
    ):
        command = account_commands.add_parser(action, help=text)
        command.add_argument("id", type=int, metavar="ID")
        if action == "show":
            command.add_argument("--json", action="store_true", help="print JSON, times as epoch seconds")
    rename = account_commands.add_parser("rename", help="give an account a label")
    rename.add_argument("id", type=int, metavar="ID")
    rename.add_argument("label", help='the label ("" clears it)')
    policy = account_commands.add_parser(
        "policy",
        help="how routing treats an account: normal, burn_first (spend it first), preserve (keep a reserve)",
    )
    policy.add_argument("id", type=int, metavar="ID")
    policy.add_argument("policy", choices=("normal", "burn_first", "preserve"))
    policy.add_argument(
        "--reserve",
        type=float,
        metavar="PERCENT",
        help="preserve: below this much left in its tighter window the account serves only when no other "
        "can (default 20; 100: standby only)",
    )
    export = account_commands.add_parser("export", help="write an account's Codex auth.json (recorded)")
    export.add_argument("id", type=int, metavar="ID")
    export.add_argument("--output", "-o", required=True, metavar="PATH", help="file to write (created 0600)")
    for sub in account_commands.choices.values():
        sub.add_argument("--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)")
    _add_key_commands(commands)
    from server.auth import operator as dashboard_operator

    dashboard_operator.add_arguments(commands)
    from server.cli import backup, codex_sessions

    backup.add_arguments(commands)
    codex_sessions.add_arguments(commands)
    from server.cli import egress as proxy_commands

    proxy_commands.add_arguments(commands)
    demo = commands.add_parser(
        "demo", help="try codex-lb against a fake ChatGPT backend with three fake accounts"
    )
    from server.demo import add_arguments as add_demo_arguments

    add_demo_arguments(demo)
    return parser


def _add_key_commands(commands) -> None:
    keys = commands.add_parser("keys", help="manage API keys for clients (sk-clb-…)")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it once, on the last line")
    create.add_argument("name", help="what the key is for, e.g. 'ci bot'")
    create.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="QUANTITY/WINDOW=MAX[@MODEL]",
        help="a limit rule, e.g. tokens/day=1000000, requests/minute=60, cost_usd/month=50@gpt-5.4 "
        "(quantities: tokens, cost_usd, requests; windows: minute, hour, day, week, month; repeatable)",
    )
    create.add_argument("--model", action="append", default=[], help="allow only this model (repeatable)")
    create.add_argument("--account", action="append", type=int, default=[], help="use only this account id")
    create.add_argument("--expires-in-days", type=float, help="the key stops working after this many days")
    key_commands.add_parser(
        "list", help="list keys with their limits and usage (never the secrets)"
    ).add_argument("--json", action="store_true", help="print JSON (what GET /api/api-keys answers)")
    revoke = key_commands.add_parser("revoke", help="disable a key (or --delete it with its counters)")
    revoke.add_argument("id", type=int, help="the key's id (first column of `codex-lb keys list`)")
    revoke.add_argument("--delete", action="store_true", help="delete the key instead of disabling it")
    for sub in key_commands.choices.values():
        sub.add_argument("--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)")


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container; env CODEX_LB_HOST)"
    )
    parser.add_argument(
        "--port", type=int, help="port for the proxy and dashboard (default 2455; CODEX_LB_PORT)"
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes, one per core is a good start (default: cores, max 8)"
    )
    parser.add_argument(
        "--data-dir",
        help="where the database and encryption key live (default ~/.codex-lb; CODEX_LB_DATA_DIR)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, sanic_options = parser.parse_known_args(argv)
    if sanic_options and args.command not in (None, "serve"):
        parser.error(f"unrecognized arguments: {' '.join(sanic_options)}")
    if args.command == "codex-sessions":
        from server.cli import codex_sessions

        return codex_sessions.run(args)
    if args.command == "demo":
        from server import demo

        return demo.main(args)
    if args.command in ("backup", "restore"):
        from server.cli import backup

        settings = _load_settings(args)
        return 2 if settings is None else backup.run(args, settings)
    if args.command in ("accounts", "keys", "dashboard", "proxies"):
        from server.auth import operator as dashboard_operator
        from server.cli import egress as proxy_commands
        from server.cli import operator as operator_commands

        settings = _load_settings(args)
        if settings is None:
            return 2
        warn_about_variables(settings)
        run = {
            "accounts": operator_commands.run_accounts,
            "keys": operator_commands.run_keys,
            "dashboard": dashboard_operator.run,
            "proxies": proxy_commands.run,
        }[args.command]
        return operator_commands.in_one_line(run, args, settings)
    return serve(args, sanic_options)


def _load_settings(args: argparse.Namespace) -> Settings | None:
    if getattr(args, "data_dir", None):
        export_overrides({"data_dir": os.path.abspath(os.path.expanduser(args.data_dir))})
    try:
        return Settings.load()
    except ConfigError as exc:
        print(f"codex-lb: configuration error: {exc}", file=sys.stderr)
        return None


def serve(args: argparse.Namespace, sanic_options: list[str] | None = None) -> int:
    """Other arguments (e.g. --access-logs, --debug) go to sanic as they are."""
    settings = _load_settings(args)
    if settings is None:
        return 2
    if getattr(args, "check", False):
        return 0
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    command = [
        sys.executable,
        "-m",
        "sanic",
        "server.app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(sanic_options or []),
    ]
    os.execv(sys.executable, command)
    return 0  # not reached
