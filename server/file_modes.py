"""Owner-only modes for the files that hold secrets: the data dir, the encryption key, the SQLite database
and its -wal/-shm. New ones are created so; existing ones are tightened, or a warning says why not."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
_GROUP_AND_OTHER = 0o077
_warned: set[Path] = set()


def make_owner_only(path: Path) -> None:
    """Take group and other permissions off an existing file or dir. When that fails (another owner, a
    read-only mount such as a Kubernetes secret) start-up goes on, with a warning once per path."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # absent, or not ours to look at: whatever uses it next says so
        return
    if not mode & _GROUP_AND_OTHER:
        return
    try:
        os.chmod(path, mode & ~_GROUP_AND_OTHER)
    except OSError as exc:
        if path not in _warned:
            _warned.add(path)
            log.warning(
                "other users can read path=%s mode=%s: cannot make it owner-only (%s)",
                path,
                oct(mode),
                exc.strerror,
            )


def create_owner_only_database(path: Path) -> None:
    """The SQLite file, made 0600 before SQLite opens it: SQLite itself would create it 0644, and its
    -wal and -shm files copy the database's mode. An existing one is tightened with its companions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_owner_only(path.with_name(path.name + suffix))
