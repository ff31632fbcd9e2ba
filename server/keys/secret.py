"""Key material: `sk-clb-` + 32 random bytes (url-safe base64), stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-clb-"
DISPLAY_CHARS = 12  # "sk-clb-" and the first five random characters: enough to tell keys apart


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]
