"""`codex-lb backup` / `codex-lb restore`: the data directory as one file, and back.

A backup is a tar.gz (0600, and so are its members) of a consistent copy of the SQLite database, made
with SQLite's online backup API so a running server need not stop, plus the encryption key file, without
which the stored OAuth tokens cannot be opened. With PostgreSQL only the key file is saved: the database is
backed up with pg_dump (docs/operations.md). Restore refuses while a server uses the data dir, and refuses to
replace files without --force; what it replaces is kept beside, renamed; what it writes is 0600.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from server.config import Settings
from server.file_modes import make_owner_only
from server.settings.database_url import sqlite_path

DATABASE_NAME = "store.db"
KEY_NAME = "encryption.key"
MANIFEST_NAME = "codex-lb-backup.json"
KEY_WARNING = (
    "warning: the backup holds the encryption key: whoever has the file can open every account's "
    "OAuth tokens. Keep it as safe as the accounts themselves."
)


class RestoreRefused(Exception):
    """Restoring now would break a running server or overwrite files the operator did not offer up."""


def add_arguments(commands) -> None:
    backup = commands.add_parser("backup", help="write the database and the encryption key to one file")
    backup.add_argument(
        "--output", "-o", metavar="PATH", help="the file (default codex-lb-backup-<time>.tar.gz)"
    )
    restore = commands.add_parser("restore", help="put a backup back into the data dir (server stopped)")
    restore.add_argument("path", metavar="BACKUP", help="a file written by `codex-lb backup`")
    restore.add_argument("--force", action="store_true", help="replace the data dir's database and key")
    for command in (backup, restore):
        command.add_argument(
            "--data-dir", help="the server's data dir (default ~/.codex-lb; CODEX_LB_DATA_DIR)"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "backup":
        output = Path(args.output or f"codex-lb-backup-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
        saved = backup(settings, output)
        print(f"backed up {', '.join(saved)} to {output}")
        if not settings.is_sqlite:
            print("the database is PostgreSQL: back it up with pg_dump (see docs/operations.md)")
        print(KEY_WARNING, file=sys.stderr)
        return 0
    try:
        restored = restore(settings, Path(args.path), force=args.force)
    except RestoreRefused as exc:
        print(f"codex-lb: {exc}", file=sys.stderr)
        return 1
    print(f"restored {', '.join(restored)} into {settings.data_dir}")
    return 0


def backup(settings: Settings, output: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="codex-lb-backup-") as staging:
        staged = Path(staging)
        names = []
        if settings.is_sqlite and sqlite_path(settings.database_url).exists():
            _copy_database(sqlite_path(settings.database_url), staged / DATABASE_NAME)
            names.append(DATABASE_NAME)
        if settings.encryption_key_file.exists():
            shutil.copyfile(settings.encryption_key_file, staged / KEY_NAME)
            names.append(KEY_NAME)
        manifest = {"created_at": time.time(), "files": names, "database": "sqlite" if settings.is_sqlite else
                    "postgresql"}  # fmt: skip
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # O_CREAT's mode is ignored when the file already exists
        with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            archive.addfile(info, io.BytesIO(data))
            for name in names:
                archive.add(staged / name, arcname=name, filter=_owner_only)
    return names


def _owner_only(member: tarfile.TarInfo) -> tarfile.TarInfo:
    # The staged copies carry the umask's 0644: extracted as such, the key would be world-readable.
    member.mode = 0o600
    return member


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the server keeps writing (WAL mode)."""
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        copy.close()
        origin.close()


def restore(settings: Settings, archive_path: Path, force: bool) -> list[str]:
    _refuse_if_running(settings)
    with tempfile.TemporaryDirectory(prefix="codex-lb-restore-") as staging:
        staged = Path(staging)
        names = _unpack(archive_path, staged)
        targets = {}
        if DATABASE_NAME in names:
            if not settings.is_sqlite:
                raise RestoreRefused(
                    "the backup holds a SQLite database but CODEX_LB_DATABASE_URL is PostgreSQL"
                )
            _check_database(staged / DATABASE_NAME)
            targets[DATABASE_NAME] = sqlite_path(settings.database_url)
        if KEY_NAME in names:
            targets[KEY_NAME] = settings.encryption_key_file
        present = [str(path) for path in targets.values() if path.exists()]
        if present and not force:
            raise RestoreRefused(
                f"{', '.join(present)} exist: add --force to replace them (they are kept beside)"
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_owner_only(settings.data_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for name, target in targets.items():
            _set_aside(target, stamp)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _copy_owner_only(staged / name, target)
    return sorted(targets)


def _copy_owner_only(source: Path, target: Path) -> None:
    """Created 0600 rather than chmod-ed after the copy, so the secret is never readable by others."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out, source.open("rb") as data:
        shutil.copyfileobj(data, out)


def _unpack(archive_path: Path, staged: Path) -> list[str]:
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            names = archive.getnames()
            if MANIFEST_NAME not in names:
                raise RestoreRefused(f"{archive_path} is not a codex-lb backup (no {MANIFEST_NAME})")
            wanted = [n for n in names if n in (DATABASE_NAME, KEY_NAME)]
            archive.extractall(staged, members=[archive.getmember(n) for n in wanted], filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise RestoreRefused(f"cannot read {archive_path}: {exc}") from None
    return wanted


def _check_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(f"the backup's database is unreadable: {exc}") from None
    finally:
        conn.close()
    if result != "ok":
        raise RestoreRefused(f"the backup's database fails its integrity check: {result}")


def _set_aside(path: Path, stamp: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        current = path.with_name(path.name + suffix)
        if current.exists():
            current.rename(path.with_name(f"{path.name}.before-restore-{stamp}{suffix}"))


def _refuse_if_running(settings: Settings) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.port}/health/live", timeout=2):
            pass
    except (urllib.error.URLError, OSError):
        pass
    else:
        raise RestoreRefused(f"a codex-lb server answers on port {settings.port}: stop it first")
    if settings.is_sqlite:
        database = sqlite_path(settings.database_url)
        holder = _process_holding(database)
        if holder is not None:
            raise RestoreRefused(
                f"{database} is open in process {holder}: stop the server using it first"
            )


def _process_holding(path: Path) -> int | None:
    """Another process of this host with the file open (Linux /proc; elsewhere None)."""
    target = str(path.resolve()) if path.exists() else None
    proc = Path("/proc")
    if target is None or not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    return int(entry.name)
        except OSError:  # gone, or not ours to look at
            continue
    return None
