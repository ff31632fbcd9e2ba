"""The dashboard's credentials, sessions and recovery codes in the database (sign-in attempts: throttle.py).

Only this module writes those tables. Every change that other workers or replicas must notice bumps the
roster change marker, so their caches (server/auth/sessions.py) reload within one poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pony import orm

from server.runtime.change_marker import bump_roster_version

ADMIN = "admin"
VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Credentials:
    admin_hash: str = ""
    viewer_hash: str = ""
    totp_secret: str = ""  # SecretBox ciphertext
    totp_pending_secret: str = ""  # SecretBox ciphertext
    bootstrap_hash: str = ""

    @property
    def password_set(self) -> bool:
        return bool(self.admin_hash)

    @property
    def viewer_set(self) -> bool:
        return bool(self.viewer_hash)

    @property
    def totp_enabled(self) -> bool:
        return bool(self.totp_secret)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    token_hash: str
    role: str
    user: str
    created_at: float
    last_seen_at: float
    expires_at: float
    client_address: str
    user_agent: str

    @classmethod
    def of(cls, row) -> SessionRow:
        return cls(
            row.id,
            row.token_hash,
            row.role,
            row.user_name,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
            row.client_address,
            row.user_agent,
        )

    def public(self, current_id: str | None) -> dict:
        return {
            "id": self.id,
            "role": self.role,
            "user": self.user or None,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "expires_at": self.expires_at,
            "client_address": self.client_address,
            "user_agent": self.user_agent,
            "current": self.id == current_id,
        }


def _row(db: orm.Database):
    return db.DashboardAuth[1]


@orm.db_session
def load_credentials(db: orm.Database) -> Credentials:
    row = _row(db)
    return Credentials(
        row.admin_password_hash,
        row.viewer_password_hash,
        row.totp_secret,
        row.totp_pending_secret,
        row.bootstrap_token_hash,
    )


def _changed(db: orm.Database, row) -> None:
    row.updated_at = time.time()
    bump_roster_version(db)


# ---- passwords and the bootstrap token


@orm.db_session(retry=3)
def claim_bootstrap_token(db: orm.Database, token_hash: str, sealed: str) -> bool:
    """Store a new bootstrap token unless one exists or a password is set; True for the caller that did."""
    cursor = db.execute(
        "UPDATE dashboard_auth SET bootstrap_token_hash = $token_hash, bootstrap_token_sealed = $sealed "
        "WHERE id = 1 AND bootstrap_token_hash = '' AND admin_password_hash = ''"
    )
    return cursor.rowcount == 1


@orm.db_session
def sealed_bootstrap_token(db: orm.Database) -> str:
    row = _row(db)
    return "" if row.admin_password_hash else row.bootstrap_token_sealed


@orm.db_session(retry=3)
def set_first_password(db: orm.Database, password_hash: str) -> bool:
    """The bootstrap step: set the admin password only if none is set yet (two racing visitors: one wins)."""
    cursor = db.execute(
        "UPDATE dashboard_auth SET admin_password_hash = $password_hash, bootstrap_token_hash = '', "
        "bootstrap_token_sealed = '', updated_at = $(time.time()) WHERE id = 1 AND admin_password_hash = ''"
    )
    if cursor.rowcount == 1:
        bump_roster_version(db)
    return cursor.rowcount == 1


@orm.db_session(retry=3)
def set_admin_password(db: orm.Database, password_hash: str, keep_session: str | None) -> int:
    """A new admin password ends every other session; returns how many ended."""
    row = _row(db)
    row.admin_password_hash = password_hash
    row.bootstrap_token_hash = ""
    row.bootstrap_token_sealed = ""
    _changed(db, row)
    return _delete_sessions(db, keep=keep_session)


@orm.db_session(retry=3)
def set_viewer_password(db: orm.Database, password_hash: str) -> int:
    """Set (or with "" remove) the viewer password; the viewer sessions end either way."""
    row = _row(db)
    row.viewer_password_hash = password_hash
    _changed(db, row)
    return _delete_sessions(db, role=VIEWER)


# ---- TOTP


@orm.db_session(retry=3)
def set_totp_pending(db: orm.Database, sealed_secret: str) -> None:
    row = _row(db)
    row.totp_pending_secret = sealed_secret
    row.updated_at = time.time()


@orm.db_session(retry=3)
def enable_totp(db: orm.Database, sealed_secret: str, used_step: int, recovery_digests: list[str]) -> None:
    row = _row(db)
    row.totp_secret = sealed_secret
    row.totp_pending_secret = ""
    row.totp_last_step = used_step
    orm.delete(code for code in db.DashboardRecoveryCode)
    now = time.time()
    for code_hash in recovery_digests:
        db.DashboardRecoveryCode(code_hash=code_hash, created_at=now)
    _changed(db, row)


@orm.db_session(retry=3)
def disable_totp(db: orm.Database) -> None:
    row = _row(db)
    row.totp_secret = ""
    row.totp_pending_secret = ""
    row.totp_last_step = 0
    orm.delete(code for code in db.DashboardRecoveryCode)
    _changed(db, row)


@orm.db_session(retry=3)
def use_totp_step(db: orm.Database, step: int) -> bool:
    """Accept a code's time step once, across every worker and replica: later steps only."""
    cursor = db.execute(
        "UPDATE dashboard_auth SET totp_last_step = $step WHERE id = 1 AND totp_last_step < $step"
    )
    return cursor.rowcount == 1


@orm.db_session(retry=3)
def use_recovery_code(db: orm.Database, code_hash: str) -> bool:
    cursor = db.execute("DELETE FROM dashboard_recovery_code WHERE code_hash = $code_hash")
    return cursor.rowcount == 1


# ---- sessions


@orm.db_session(retry=3)
def create_session(
    db: orm.Database,
    session_id: str,
    token_hash: str,
    role: str,
    user: str,
    lifetime_s: float,
    client_address: str,
    user_agent: str,
) -> SessionRow:
    now = time.time()
    row = db.DashboardSession(
        id=session_id,
        token_hash=token_hash,
        role=role,
        user_name=user[:200],
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime_s,
        client_address=client_address[:64],
        user_agent=user_agent[:300],
    )
    return SessionRow.of(row)


@orm.db_session(retry=3)
def find_session(db: orm.Database, token_hash: str, idle_s: float, touch_after_s: float) -> SessionRow | None:
    """The live session with this token (recording that it was seen), or None; an expired one is deleted."""
    row = db.DashboardSession.get(token_hash=token_hash)
    if row is None:
        return None
    now = time.time()
    if now >= row.expires_at or now - row.last_seen_at >= idle_s:
        row.delete()
        return None
    if now - row.last_seen_at >= touch_after_s:
        row.last_seen_at = now
    return SessionRow.of(row)


@orm.db_session
def list_sessions(db: orm.Database, idle_s: float) -> list[SessionRow]:
    now = time.time()
    rows = db.DashboardSession.select(lambda s: s.expires_at > now and s.last_seen_at > now - idle_s)
    return [SessionRow.of(row) for row in rows.order_by(orm.desc(db.DashboardSession.last_seen_at))]


@orm.db_session(retry=3)
def delete_session(db: orm.Database, session_id: str) -> bool:
    row = db.DashboardSession.get(id=session_id)
    if row is None:
        return False
    row.delete()
    bump_roster_version(db)
    return True


@orm.db_session(retry=3)
def delete_sessions(db: orm.Database, keep: str | None = None, role: str | None = None) -> int:
    return _delete_sessions(db, keep=keep, role=role)


def _delete_sessions(db: orm.Database, keep: str | None = None, role: str | None = None) -> int:
    query = db.DashboardSession.select()
    if keep is not None:
        query = query.filter(lambda s: s.id != keep)
    if role is not None:
        query = query.filter(lambda s: s.role == role)
    count = query.delete(bulk=True)
    bump_roster_version(db)
    return count


@orm.db_session(retry=3)
def prune(db: orm.Database, idle_s: float) -> int:
    """Expired sessions; returns how many were removed."""
    now = time.time()
    return orm.delete(s for s in db.DashboardSession if s.expires_at <= now or s.last_seen_at <= now - idle_s)
