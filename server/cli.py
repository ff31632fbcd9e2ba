"""The `codex-lb` console command: start the server (the default) and, later, operator sub-commands.

`codex-lb serve` execs the same `sanic server.app` command users and the Procfile run, so there is one
way the server starts; CLI flags travel to the worker processes as CODEX_LB_* variables.
"""

from __future__ import annotations

import argparse
import os
import sys

from server.config import ConfigError, Settings, export_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-lb",
        description="Pool several ChatGPT (Codex) accounts behind one OpenAI-compatible endpoint.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="start the server (the default command)")
    _add_serve_options(serve)
    _add_serve_options(parser)
    accounts = commands.add_parser("accounts", help="manage pooled ChatGPT accounts")
    account_commands = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    importer = account_commands.add_parser(
        "import", help="import Codex auth.json files (an account already present gets the new tokens)"
    )
    importer.add_argument("paths", nargs="+", metavar="PATH", help="auth.json files, e.g. ~/.codex/auth.json")
    account_commands.add_parser("list", help="list the pooled accounts and their states")
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
        account_commands.add_parser(action, help=text).add_argument("id", type=int, metavar="ID")
    rename = account_commands.add_parser("rename", help="give an account a label")
    rename.add_argument("id", type=int, metavar="ID")
    rename.add_argument("label", help='the label ("" clears it)')
    export = account_commands.add_parser("export", help="write an account's Codex auth.json (recorded)")
    export.add_argument("id", type=int, metavar="ID")
    export.add_argument("--output", "-o", required=True, metavar="PATH", help="file to write (created 0600)")
    for sub in account_commands.choices.values():
        sub.add_argument("--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)")
    return parser


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
    args = build_parser().parse_args(argv)
    if args.command == "accounts":
        from server import operator_commands

        settings = _load_settings(args)
        if settings is None:
            return 2
        return operator_commands.run_accounts(args, settings)
    return serve(args)


def _load_settings(args: argparse.Namespace) -> Settings | None:
    if getattr(args, "data_dir", None):
        export_overrides({"data_dir": os.path.abspath(os.path.expanduser(args.data_dir))})
    try:
        return Settings.load()
    except ConfigError as exc:
        print(f"codex-lb: configuration error: {exc}", file=sys.stderr)
        return None


def serve(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    if settings is None:
        return 2
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
    ]
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
