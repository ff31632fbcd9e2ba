"""The secret box: encrypts OAuth tokens at rest with a key file shared by all workers and replicas.

The key file holds 32 random bytes as URL-safe base64 (easy to copy into a Kubernetes secret); it is
created 0600 on first start, atomically, so workers racing at start-up all end up with the same key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils

from server.config import ConfigError
from server.file_modes import make_owner_only

KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE


class SecretBoxError(ValueError):
    """A ciphertext could not be opened: wrong key file or corrupted data."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    def encrypt(self, plaintext: str) -> str:
        return base64.urlsafe_b64encode(self._box.encrypt(plaintext.encode("utf-8"))).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._box.decrypt(base64.urlsafe_b64decode(ciphertext)).decode("utf-8")
        except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as exc:
            raise SecretBoxError("cannot decrypt: the encryption key file does not match this data") from exc


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it (0600, atomically) if it does not exist yet, tightening it if not."""
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as exc:
            raise ConfigError(
                f"CODEX_LB_ENCRYPTION_KEY_FILE={path}: cannot create it ({exc.strerror})"
            ) from None
    make_owner_only(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = base64.urlsafe_b64decode(text)
    except (OSError, UnicodeDecodeError, binascii.Error, ValueError) as exc:
        raise ConfigError(f"CODEX_LB_ENCRYPTION_KEY_FILE={path}: unreadable key file ({exc})") from None
    if len(key) != KEY_SIZE:
        raise ConfigError(
            f"CODEX_LB_ENCRYPTION_KEY_FILE={path}: expected {KEY_SIZE} bytes of base64, found {len(key)}"
        )
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encoded = base64.urlsafe_b64encode(nacl.utils.random(KEY_SIZE)) + b"\n"
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, encoded)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # fails if another process won the race: theirs is the key
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
