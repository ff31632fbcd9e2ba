"""`codex-lb codex-sessions retag`: move a user's Codex CLI history between providers.

`codex resume` lists only sessions whose provider is the one configured, so after switching the CLI to
codex-lb the old `openai` sessions vanish from it (and the other way round). The CLI keeps the
provider in two places: the `session_meta` line of each rollout (`sessions/**/*.jsonl`, also
`archived_sessions/`) and, since CLI 0.105, the `threads` table of `state_<n>.sqlite`. Both are
re-tagged, after a backup of every file that will change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROLLOUT_DIRS = ("sessions", "archived_sessions")
DEFAULT_PROVIDER = "codex-lb"
LOCK_TIMEOUT_S = 5.0


@dataclass
class RetagReport:
    scanned: int = 0
    changed_files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable or malformed files
    thread_rows: int = 0
    databases: list[Path] = field(default_factory=list)
    backup: Path | None = None


def add_arguments(commands) -> None:
    sessions = commands.add_parser("codex-sessions", help="work on your Codex CLI session history")
    actions = sessions.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    retag = actions.add_parser(
        "retag",
        help="re-tag Codex CLI sessions from provider `openai` to codex-lb (or --back), so that "
        "`codex resume` lists them again",
    )
    retag.add_argument("--codex-home", help="the CLI's home (default $CODEX_HOME or ~/.codex)")
    retag.add_argument(
        "--provider",
        default=DEFAULT_PROVIDER,
        help=f"codex-lb's provider id in config.toml (default {DEFAULT_PROVIDER})",
    )
    retag.add_argument("--back", action="store_true", help="re-tag from the codex-lb provider back to openai")
    retag.add_argument("--dry-run", action="store_true", help="only count what would change")


def run(args: argparse.Namespace, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    home = Path(args.codex_home or env.get("CODEX_HOME") or Path.home() / ".codex").expanduser()
    if not home.is_dir():
        print(f"codex-lb: no Codex CLI home at {home} (set --codex-home)", file=sys.stderr)
        return 2
    old, new = ("openai", args.provider) if not args.back else (args.provider, "openai")
    try:
        report = retag(home, old, new, dry_run=args.dry_run)
    except sqlite3.OperationalError as exc:
        print(f"codex-lb: the Codex thread index is busy ({exc}); close running Codex CLIs and retry",
              file=sys.stderr)  # fmt: skip
        return 1
    verb = "would re-tag" if args.dry_run else "re-tagged"
    print(f"{verb} {len(report.changed_files)} of {report.scanned} session files and "
          f"{report.thread_rows} thread index rows from {old!r} to {new!r}")  # fmt: skip
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if report.backup is not None:
        print(f"backup of the changed files: {report.backup}")
    return 0


def retag(home: Path, old: str, new: str, dry_run: bool = False) -> RetagReport:
    report = RetagReport()
    planned: list[tuple[Path, bytes]] = []
    for path in _rollouts(home):
        report.scanned += 1
        try:
            rewritten = _rewritten(path.read_bytes(), old, new)
        except (OSError, ValueError) as exc:
            report.skipped.append((path, str(exc)))
            continue
        if rewritten is not None:
            planned.append((path, rewritten))
    databases = sorted(home.glob("state_*.sqlite"))
    counts = {db: _count_threads(db, old) for db in databases}
    report.changed_files = [path for path, _ in planned]
    report.thread_rows = sum(counts.values())
    report.databases = [db for db, count in counts.items() if count]
    if dry_run or not (planned or report.databases):
        return report
    report.backup = _backup(home, [p for p, _ in planned], report.databases)
    for path, content in planned:
        _replace(path, content)
    for db in report.databases:
        _update_threads(db, old, new)
    return report


def _rollouts(home: Path):
    for name in ROLLOUT_DIRS:
        root = home / name
        if root.is_dir():
            yield from sorted(root.rglob("*.jsonl"))


def _rewritten(content: bytes, old: str, new: str) -> bytes | None:
    """The file with its session_meta provider changed, or None when it has none to change."""
    lines = content.split(b"\n")
    changed = False
    for i, line in enumerate(lines):
        if b'"session_meta"' not in line:
            continue
        record = json.loads(line)
        payload = record.get("payload") if record.get("type") == "session_meta" else None
        if not isinstance(payload, dict) or payload.get("model_provider") != old:
            continue
        payload["model_provider"] = new
        lines[i] = _edited(line, record, old, new)
        changed = True
    return b"\n".join(lines) if changed else None


def _edited(line: bytes, record: dict, old: str, new: str) -> bytes:
    """Change only the provider's bytes, so the rest of the line stays exactly as the CLI wrote it;
    re-serialise only if that would not give the same record."""
    needle = b'"model_provider":' + json.dumps(old).encode()
    replacement = b'"model_provider":' + json.dumps(new).encode()
    if line.count(needle) == 1:
        candidate = line.replace(needle, replacement)
        if json.loads(candidate) == record:
            return candidate
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _replace(path: Path, content: bytes) -> None:
    stat = path.stat()
    temporary = path.with_name(path.name + ".codex-lb-retag")
    temporary.write_bytes(content)
    os.chmod(temporary, stat.st_mode & 0o7777)
    os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the CLI sorts by time: keep it
    os.replace(temporary, path)


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, timeout=LOCK_TIMEOUT_S)


def _count_threads(db: Path, provider: str) -> int:
    conn = _connect(db)
    try:
        query = "SELECT count(*) FROM threads WHERE model_provider = ?"
        return conn.execute(query, (provider,)).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        conn.close()


def _update_threads(db: Path, old: str, new: str) -> None:
    conn = _connect(db)
    try:
        with conn:
            conn.execute("UPDATE threads SET model_provider = ? WHERE model_provider = ?", (new, old))
    finally:
        conn.close()


def _backup(home: Path, files: list[Path], databases: list[Path]) -> Path:
    target = home / f"codex-lb-retag-backup-{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(target.name.split("~")[0] + f"~{suffix}")
    for path in files:
        copy = target / path.relative_to(home)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    target.mkdir(parents=True, exist_ok=True)
    for db in databases:
        # The online backup API: a consistent copy even while a Codex CLI has the database open.
        source, copy = _connect(db), sqlite3.connect(target / db.name)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    return target
