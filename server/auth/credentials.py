"""Password hashing (argon2id), random tokens and their digests, TOTP codes and recovery codes.

Pure functions, no I/O. argon2id is deliberately slow (tens of milliseconds and 64 MiB): call
`hash_password` and `verify_password` off the event loop (server/auth/service.py does).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets

import nacl.exceptions
import nacl.pwhash
import pyotp
import segno

OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
TOTP_ISSUER = "codex-lb"
RECOVERY_CODES = 10
# Compared against when no password is set, so a refusal takes as long as a wrong password.
_DUMMY_HASH = nacl.pwhash.argon2id.str(b"no password is set", OPSLIMIT, MEMLIMIT).decode()


def hash_password(password: str) -> str:
    return nacl.pwhash.argon2id.str(password.encode(), OPSLIMIT, MEMLIMIT).decode()


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant work whether or not a hash is stored."""
    try:
        nacl.pwhash.verify((stored_hash or _DUMMY_HASH).encode(), password.encode())
    except nacl.exceptions.InvalidkeyError:
        return False
    return bool(stored_hash)


def password_problem(password: object) -> str | None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        return f"A password needs at least {MIN_PASSWORD_CHARS} characters."
    if len(password) > MAX_PASSWORD_CHARS:
        return f"A password has at most {MAX_PASSWORD_CHARS} characters."
    return None


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


# ---- TOTP (RFC 6238: 30-second steps, 6 digits, SHA-1, as every authenticator app expects)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def otpauth_uri(secret: str, account: str = "dashboard") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False)
    return out.getvalue().decode()


def totp_step(secret: str, code: str, now: float) -> int | None:
    """The time step the code belongs to (the current one or one either side, for clock drift), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = int(now // totp.interval)
    found = None
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            found = candidate  # no early exit: the same work for every code
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes like `k7f2-9xq4-mm3p`: 60 random bits each, easy to type."""
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_digest(code: str) -> str:
    """Typed with or without the dashes, in any case."""
    return digest(code.strip().lower().replace(" ", "").replace("-", ""))


def is_recovery_code(code: str) -> bool:
    """A TOTP code is six digits; anything longer is tried as a recovery code."""
    return len(code.strip().replace(" ", "")) > 6
