"""Dashboard sign-in per worker: who a request is (session, local rule, trusted header), passwords,
TOTP, the bootstrap token, throttling. Built in before_server_start and kept on app.ctx.dashboard_auth.

Sessions and credentials live in the database (server/auth/store.py); this worker keeps copies for at
most CACHE_TTL_S and drops them whenever the change watcher sees a change, so a revoked session stops
working on this worker at once, on the other workers of the host within a quarter second, on other
replicas within the change-marker poll (1.5 s), and everywhere within CACHE_TTL_S even if a poll fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sanic import Request

from server.auth import audit, store, throttle
from server.auth import credentials as cred
from server.auth.clients import client_address, via_trusted_proxy
from server.auth.firewall import is_local_request
from server.auth.store import ADMIN, VIEWER, Credentials, SessionRow
from server.config import Settings
from server.db import Database
from server.errors import ProxyError
from server.runtime.secretbox import SecretBox

log = logging.getLogger(__name__)

COOKIE = "codex_lb_session"
CACHE_TTL_S = 5.0
TOUCH_AFTER_S = 60.0  # last_seen_at is written at most this often per session
ARGON2_AT_ONCE = 2  # per worker: each verification holds 64 MiB
INVALID = "Wrong password or code."


@dataclass(frozen=True, slots=True)
class Identity:
    role: str | None  # "admin", "viewer" or None (not signed in)
    user: str | None = None
    session: SessionRow | None = None
    via: str = ""  # session, local, header, disabled

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    @property
    def actor(self) -> str:
        if self.user:
            return self.user
        if self.role is None:
            return "anonymous"
        return f"{self.role} ({self.via})" if self.via != "session" else self.role


NOBODY = Identity(role=None)


def refusal(message: str, code: str, status: int = 401, headers: dict | None = None) -> ProxyError:
    return ProxyError(message, status=status, type="authentication_error", code=code, headers=headers)


class SignInAttempt:
    """One admitted check of a password, code or token from one address: a failure unless it succeeds."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.ok = False

    def succeeded(self) -> None:
        self.ok = True

    def failed(self, reason: str) -> ProxyError:
        log.warning("dashboard sign-in refused client=%s reason=%s", self.address, reason)
        return refusal(INVALID, "invalid_credentials")


class DashboardAuth:
    def __init__(self, settings: Settings, db: Database, box: SecretBox, bump_generation) -> None:
        self.settings = settings
        self.mode = settings.dashboard_auth_mode
        self.header = settings.dashboard_auth_proxy_header.lower()
        self._db = db
        self._box = box
        self._bump_generation = bump_generation
        self._creds = Credentials()
        self._creds_at = -1e9
        self._sessions: dict[str, tuple[SessionRow, float]] = {}
        self._argon2 = asyncio.Semaphore(ARGON2_AT_ONCE)
        self.session_lookups = 0  # database round trips for sessions (the cache should spare most)

    # ---- caches

    async def reload(self) -> None:
        """Called by the change watcher: something changed somewhere; forget what this worker holds."""
        self._sessions.clear()
        self._creds = await self._db.run(store.load_credentials)
        self._creds_at = time.monotonic()

    async def credentials(self) -> Credentials:
        if time.monotonic() - self._creds_at > CACHE_TTL_S:
            await self.reload()
        return self._creds

    async def fresh_credentials(self) -> Credentials:
        """For sign-in steps: what the database says now, not up to CACHE_TTL_S ago."""
        self._creds = await self._db.run(store.load_credentials)
        self._creds_at = time.monotonic()
        return self._creds

    def changed(self) -> None:
        """This worker changed credentials or sessions: drop its copies and tell the host's other workers."""
        self._sessions.clear()
        self._creds_at = -1e9
        self._bump_generation()

    async def session(self, token: str) -> SessionRow | None:
        if not token or len(token) > 100:
            return None
        key = cred.digest(token)
        cached = self._sessions.get(key)
        now = time.time()
        if cached is not None:
            row, fetched = cached
            if time.monotonic() - fetched < CACHE_TTL_S and now < row.expires_at:
                return row
        idle_s = self.settings.dashboard_session_idle_s
        self.session_lookups += 1
        row = await self._db.run(store.find_session, key, idle_s, TOUCH_AFTER_S)
        if row is None:
            self._sessions.pop(key, None)
            return None
        if len(self._sessions) > 10_000:
            self._sessions.clear()
        self._sessions[key] = (row, time.monotonic())
        return row

    # ---- who is asking

    async def identify(self, request: Request) -> Identity:
        cached = getattr(request.ctx, "identity", None)
        if cached is not None:
            return cached
        identity = await self._identify(request)
        request.ctx.identity = identity
        return identity

    async def _identify(self, request: Request) -> Identity:
        if self.mode == "disabled":
            return Identity(role=ADMIN, via="disabled")
        if self.mode == "trusted_header":
            user = request.headers.get(self.header, "").strip()
            if user:
                if via_trusted_proxy(request):
                    return Identity(role=ADMIN, user=user[:200], via="header")
                log.warning(
                    "dashboard refused header=%s client=%s reason=untrusted_peer",
                    self.settings.dashboard_auth_proxy_header,
                    client_address(request),
                )
        row = await self.session(request.cookies.get(COOKIE, ""))
        if row is not None:
            return Identity(role=row.role, user=row.user or None, session=row, via="session")
        local = self.mode == "standard" and is_local_request(request)
        if local and not (await self.credentials()).password_set:
            return Identity(role=ADMIN, via="local")
        return NOBODY

    async def status(self, request: Request) -> dict:
        identity = await self.identify(request)
        creds = await self.credentials()
        return {
            "mode": self.mode,
            "authenticated": identity.authenticated,
            "role": identity.role,
            "user": identity.user,
            "password_set": creds.password_set,
            "totp_enabled": creds.totp_enabled,
            "via": identity.via or None,
            "bootstrap_required": self.mode == "standard"
            and not creds.password_set
            and not identity.authenticated,
            "local_without_password": identity.via == "local",
            "proxy_required": self.proxy_required(identity, creds),
        }

    def proxy_required(self, identity: Identity, creds: Credentials) -> bool:
        return self.mode == "trusted_header" and not identity.authenticated and not creds.password_set

    async def require(self, request: Request, write: bool, admin_only: bool = False) -> Identity:
        """The /api gate: signed in, and an admin for a change or an admin-only read."""
        identity = await self.identify(request)
        if not identity.authenticated:
            creds = await self.credentials()
            required = self.proxy_required(identity, creds)
            _log_refusal(request, "proxy_required" if required else "sign_in_required")
            if required:
                raise refusal(
                    "This dashboard is configured to sign people in through a reverse proxy "
                    f"(the {self.settings.dashboard_auth_proxy_header} header), and this request did not "
                    "come through it. Open the dashboard through the proxy.",
                    "proxy_required",
                )
            raise refusal("Sign in to the dashboard first.", "sign_in_required")
        if (write or admin_only) and identity.role != ADMIN:
            code = "read_only" if write else "admin_only"
            _log_refusal(request, code)
            await audit.write(request, "auth.refused", request.path, method=request.method, code=code)
            if write:
                raise refusal("The viewer role can look but not change anything.", code, status=403)
            raise refusal("Only an admin may read this (the audit log, the sessions).", code, status=403)
        return identity

    # ---- passwords, codes, throttling

    @asynccontextmanager
    async def attempt(self, request: Request) -> AsyncIterator[SignInAttempt]:
        """Admit one check of a secret (server/auth/throttle.py), or answer 429; the attempt is recorded
        before the check runs and forgotten, with this address's other failures, only if it succeeds.
        A signed-in caller (renewing, changing a password) is never held back by others' failures."""
        address = client_address(request)
        signed_in = (await self.identify(request)).authenticated
        admission = await self._db.run(throttle.admit, address, time.time(), signed_in)
        if not admission.admitted:
            raise _throttled(address, admission)
        attempt = SignInAttempt(address)
        try:
            yield attempt
        finally:
            await self._db.run(throttle.settle, address, admission.claim, attempt.ok)

    async def verify(self, stored_hash: str, password: str) -> bool:
        async with self._argon2:
            return await asyncio.to_thread(cred.verify_password, stored_hash, password)

    async def hash(self, password: str) -> str:
        async with self._argon2:
            return await asyncio.to_thread(cred.hash_password, password)

    async def password_role(self, password: str) -> str | None:
        """Which role this password opens; both hashes are always checked (same time for every answer).
        Read afresh: a password set on another replica a moment ago counts."""
        creds = await self.fresh_credentials()
        admin = await self.verify(creds.admin_hash, password)
        viewer = await self.verify(creds.viewer_hash, password)
        return ADMIN if admin else VIEWER if viewer else None

    async def check_second_factor(self, code: str) -> bool:
        """A TOTP code (each time step accepted once) or an unused recovery code."""
        creds = await self.credentials()
        if cred.is_recovery_code(code):
            return await self._db.run(store.use_recovery_code, cred.recovery_digest(code))
        step = cred.totp_step(self._box.decrypt(creds.totp_secret), code, time.time())
        return step is not None and await self._db.run(store.use_totp_step, step)

    async def check_bootstrap_token(self, token: str) -> bool:
        fixed = self.settings.dashboard_bootstrap_token
        if fixed:
            return cred.same(token, fixed)
        stored = (await self.fresh_credentials()).bootstrap_hash
        return bool(stored) and cred.same(cred.digest(token), stored)

    # ---- sessions

    async def start_session(self, request: Request, role: str, user: str = "") -> tuple[str, SessionRow]:
        token = cred.new_token()
        row = await self._db.run(
            store.create_session,
            cred.new_token(9),
            cred.digest(token),
            role,
            user,
            self.settings.dashboard_session_max_s,
            client_address(request),
            request.headers.get("user-agent", ""),
        )
        self._sessions[row.token_hash] = (row, time.monotonic())
        # From here on this request acts as the new session (its audit rows name the role, not "anonymous").
        request.ctx.identity = Identity(role=role, user=user or None, session=row, via="session")
        return token, row

    async def ensure_bootstrap_token(self) -> None:
        """At start: with no password and no configured token, make one (one process wins) and show it."""
        if self.mode != "standard" or self.settings.dashboard_bootstrap_token:
            return
        creds = await self.credentials()
        if creds.password_set:
            return
        if creds.bootstrap_hash:
            log.info(
                "dashboard: no password is set yet; remote visitors need the bootstrap token "
                "(`codex-lb dashboard show-bootstrap-token` prints it)"
            )
            return
        token = cred.new_token(24)
        if await self._db.run(store.claim_bootstrap_token, cred.digest(token), self._box.encrypt(token)):
            self.changed()
            log.warning(bootstrap_banner(token))


def _throttled(address: str, admission: throttle.Admission) -> ProxyError:
    wait, reason = admission.retry_after_s, admission.refusal
    log.warning("dashboard sign-in throttled client=%s reason=%s retry_after=%d", address, reason, wait)
    message = (
        "Another sign-in from this address is being checked. Try again in a moment."
        if reason == "checking"
        else f"Too many failed sign-ins. Try again in {wait} seconds."
    )
    return refusal(message, "too_many_attempts", status=429, headers={"retry-after": str(wait)})


def _log_refusal(request: Request, code: str) -> None:
    log.info(
        "dashboard api refused client=%s method=%s path=%s code=%s",
        client_address(request),
        request.method,
        request.path,
        code,
    )


def bootstrap_banner(token: str) -> str:
    lines = [
        "No dashboard password is set. To set one from another machine, open the dashboard and enter",
        "this one-time bootstrap token (valid until a password is set; any replica accepts it):",
        "",
        f"    {token}",
        "",
        "From this machine the dashboard opens without it.",
        "Lost it? `codex-lb dashboard show-bootstrap-token` prints it again.",
    ]
    width = max(len(line) for line in lines)
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line.ljust(width)} |" for line in lines), border])
