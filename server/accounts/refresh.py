"""Token refresh, single-flight per account across every worker and replica.

In one worker, concurrent callers share one task; across processes a lease `refresh:<id>` admits one
refresher, which re-reads the stored token first (someone may have just refreshed) and stores the
rotated tokens only while its fencing token still holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from server import metrics
from server.accounts import store
from server.accounts.claims import InvalidToken, read_claims
from server.db import Database
from server.runtime import leases
from server.runtime.secretbox import SecretBox
from server.upstream import oauth

log = logging.getLogger(__name__)
LEASE_TTL_S = 30.0
WAIT_FOR_OTHER_REFRESHER_S = 35.0


class RefreshFailed(Exception):
    def __init__(self, message: str, reauth_required: bool) -> None:
        super().__init__(message)
        self.reauth_required = reauth_required


class TokenRefresher:
    def __init__(self, db: Database, box: SecretBox, auth_base_url: str, holder: str) -> None:
        self._db = db
        self._box = box
        self._auth_base_url = auth_base_url
        self._holder = holder
        self._inflight: dict[int, asyncio.Task] = {}
        self.session: aiohttp.ClientSession | None = None
        # The account's egress route (its proxy's session); None: `session` for every account.
        self.session_for: Callable[[int], aiohttp.ClientSession] | None = None

    async def refresh(self, account_id: int, stale_access_token: str) -> str:
        """A working access token for the account, refreshing it if `stale_access_token` is still stored."""
        task = self._inflight.get(account_id)
        if task is None:
            task = asyncio.create_task(
                self._refresh(account_id, stale_access_token), name=f"refresh-{account_id}"
            )
            self._inflight[account_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(account_id, None))
        return await asyncio.shield(task)

    async def _refresh(self, account_id: int, stale: str) -> str:
        name = f"refresh:{account_id}"
        deadline = time.monotonic() + WAIT_FOR_OTHER_REFRESHER_S
        while True:
            lease = await self._db.run(leases.acquire, name, self._holder, LEASE_TTL_S)
            if lease is not None:
                break
            stored = await self._db.run(store.read_tokens, account_id, self._box)
            if stored.access_token != stale:
                return stored.access_token  # another worker or replica refreshed it
            if time.monotonic() > deadline:
                raise RefreshFailed("another refresher holds the lease for too long", reauth_required=False)
            await asyncio.sleep(0.05)
        try:
            stored = await self._db.run(store.read_tokens, account_id, self._box)
            if stored.access_token != stale:
                return stored.access_token
            return await self._exchange(account_id, stored, lease)
        finally:
            await self._db.run(leases.release, lease)

    async def _exchange(self, account_id: int, stored: store.StoredTokens, lease: leases.Lease) -> str:
        try:
            session = self.session_for(account_id) if self.session_for else self.session
        except aiohttp.ClientError as exc:  # its egress proxy is down: wait for it, never refresh direct
            raise RefreshFailed(f"token refresh not possible now: {exc}", reauth_required=False) from exc
        try:
            answer = await oauth.refresh_grant(session, self._auth_base_url, stored.refresh_token)
        except oauth.RefreshError as exc:
            metrics.refresh(ok=False)
            log.warning(
                "token refresh failed account=%d code=%s permanent=%s", account_id, exc.code, exc.permanent
            )
            if exc.permanent:
                await self._db.run(
                    store.set_status, account_id, "reauth_required", f"refresh failed: {exc.code}"
                )
            raise RefreshFailed(f"token refresh failed: {exc.code}", reauth_required=exc.permanent) from exc
        expires_at = time.time() + answer.expires_in if answer.expires_in else 0.0
        try:
            expires_at = read_claims(answer.access_token).expires_at or expires_at
        except InvalidToken:
            pass
        tokens = store.StoredTokens(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
            id_token=answer.id_token or stored.id_token,
            access_expires_at=expires_at,
        )
        await self._db.run(store.save_refreshed_tokens, account_id, tokens, self._box, lease)
        metrics.refresh(ok=True)
        log.info("token refreshed account=%d", account_id)
        return answer.access_token
