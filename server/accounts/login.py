"""Adding (or re-authenticating) accounts by signing in: browser PKCE and device code.

The flow state lives in the database (accounts.flows), so the callback can be finished by whichever
worker or replica receives it; the code exchange stores the account like an auth.json import does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp

from server.accounts import flows, store
from server.accounts.authjson import InvalidAuthJson, credentials_from_tokens
from server.db import Database
from server.jobs import PeriodicJob
from server.runtime import leases
from server.runtime.secretbox import SecretBox
from server.upstream import oauth

log = logging.getLogger(__name__)
BROWSER_FLOW_TTL_S = 15 * 60
MIN_DEVICE_POLL_S = 0.2
DEVICE_LEASE_MIN_S = 2.0
DEVICE_RESCUE_INTERVAL_S = 2.0  # the auth server says 5 s; tests (and a fake with interval 0) ask faster


class LoginError(ValueError):
    """A sign-in could not start or finish; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Completion:
    flow: flows.Flow
    email: str = ""


class LoginService:
    """One per worker. `on_accounts_changed` reloads the roster here and tells the other workers."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        auth_base_url: str,
        session: Callable[[], aiohttp.ClientSession],
        on_accounts_changed: Callable[[], Awaitable[None]],
    ) -> None:
        self._db = db
        self._box = box
        self._auth = auth_base_url
        self._session = session
        self._on_changed = on_accounts_changed
        self._device_tasks: dict[str, asyncio.Task] = {}  # by flow id
        self._holder = leases.new_holder_id()
        self.browser_flow_started: Callable[[], None] = lambda: None

    # -- browser (PKCE) ------------------------------------------------------------------------------
    async def start_browser(self, reauth_account_id: int | None = None) -> tuple[flows.Flow, str]:
        await self._check_reauth_target(reauth_account_id)
        pkce = oauth.Pkce.new()
        state = secrets.token_urlsafe(24)
        flow = flows.Flow(
            id="flow_" + secrets.token_hex(12),
            kind="browser",
            state=state,
            code_verifier=self._box.encrypt(pkce.verifier),
            device_auth_id="",
            user_code="",
            poll_interval=0.0,
            status=flows.PENDING,
            error="",
            account_id=None,
            reauth_account_id=reauth_account_id,
            created_at=time.time(),
            expires_at=time.time() + BROWSER_FLOW_TTL_S,
        )
        await self._db.run(flows.create, flow)
        self.browser_flow_started()
        return flow, oauth.authorize_url(self._auth, state, pkce.challenge)

    async def complete_callback_url(self, callback_url: str) -> Completion:
        """The final URL the browser was sent to (pasted by the user on remote set-ups)."""
        parts = urlsplit(callback_url.strip())
        if not parts.query:
            raise LoginError("paste the whole address from the browser, including ?code=…&state=…")
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
        return await self.complete_callback(query)

    async def complete_callback(self, query: dict[str, str]) -> Completion:
        state = query.get("state", "")
        if not state:
            raise LoginError("the callback has no state parameter")
        flow, why = await self._db.run(flows.claim, state, time.time())
        if flow is None:
            raise LoginError(why)
        if query.get("error"):
            reason = f"sign-in refused: {query['error']} {query.get('error_description', '')}".strip()
            await self._db.run(flows.finish, flow.id, flows.DENIED, reason)
            raise LoginError(reason)
        code = query.get("code", "")
        if not code:
            await self._db.run(flows.finish, flow.id, flows.FAILED, "the callback has no code")
            raise LoginError("the callback has no code parameter")
        verifier = self._box.decrypt(flow.code_verifier)
        return await self._exchange(flow, code, verifier, oauth.BROWSER_REDIRECT_URI, "browser sign-in")

    # -- device code ---------------------------------------------------------------------------------
    async def start_device(self, reauth_account_id: int | None = None) -> tuple[flows.Flow, str]:
        await self._check_reauth_target(reauth_account_id)
        try:
            device = await oauth.request_device_code(self._session(), self._auth)
        except oauth.OAuthError as exc:
            raise LoginError(f"device sign-in could not start: {exc}") from None
        flow = flows.Flow(
            id="flow_" + secrets.token_hex(12),
            kind="device",
            state="device_" + secrets.token_urlsafe(18),
            code_verifier="",
            device_auth_id=device.device_auth_id,
            user_code=device.user_code,
            poll_interval=max(MIN_DEVICE_POLL_S, device.interval_s),
            status=flows.PENDING,
            error="",
            account_id=None,
            reauth_account_id=reauth_account_id,
            created_at=time.time(),
            expires_at=time.time() + device.expires_in_s,
        )
        await self._db.run(flows.create, flow)
        self._poll_in_background(flow)
        return flow, f"{self._auth}/codex/device"

    async def resume_device_flows(self) -> None:
        """A periodic job: pending device sign-ins whose poller is gone (its worker stopped or crashed)
        are taken over here, so a restart does not strand a user who is typing the code."""
        for flow in await self._db.run(flows.pending_device, time.time()):
            if flow.id not in self._device_tasks:
                self._poll_in_background(flow)

    def _poll_in_background(self, flow: flows.Flow) -> None:
        task = asyncio.create_task(self._poll_device(flow), name=f"device-login-{flow.id}")
        self._device_tasks[flow.id] = task
        task.add_done_callback(lambda _t: self._device_tasks.pop(flow.id, None))

    async def _poll_device(self, flow: flows.Flow) -> None:
        # One poller per sign-in across the deployment: the lease outlives a few polls, so a poller
        # that vanished is replaced by resume_device_flows soon after.
        ttl = max(3 * flow.poll_interval, DEVICE_LEASE_MIN_S)
        name = f"device-login:{flow.id}"
        lease = await self._db.run(leases.acquire, name, self._holder, ttl)
        if lease is None:
            return  # another worker polls this sign-in
        try:
            await self._poll_device_holding(flow, name, ttl)
        finally:
            await asyncio.shield(self._db.run(leases.release, lease))

    async def _poll_device_holding(self, flow: flows.Flow, lease_name: str, ttl: float) -> None:
        try:
            while time.time() < flow.expires_at:
                await asyncio.sleep(flow.poll_interval)
                if await self._db.run(leases.acquire, lease_name, self._holder, ttl) is None:
                    return  # our lease lapsed (a long pause) and another worker took over
                try:
                    decision = await oauth.poll_device_code(
                        self._session(), self._auth, flow.device_auth_id, flow.user_code
                    )
                except oauth.OAuthError as exc:  # the auth server is briefly unreachable: keep polling
                    log.warning("device login poll failed flow=%s code=%s", flow.id, exc.code)
                    continue
                if decision.pending:
                    continue
                if decision.error:
                    status = flows.EXPIRED if "expired" in decision.error else flows.DENIED
                    if decision.error not in ("access_denied", "expired_token") and status == flows.DENIED:
                        status = flows.FAILED
                    await self._db.run(flows.finish, flow.id, status, decision.error)
                    log.info("device login ended flow=%s status=%s", flow.id, status)
                    return
                claimed, why = await self._db.run(flows.claim, flow.state, time.time())
                if claimed is None:
                    log.info("device login not finished flow=%s reason=%s", flow.id, why)
                    return
                redirect = f"{self._auth}/deviceauth/callback"
                try:
                    await self._exchange(
                        claimed,
                        decision.authorization_code,
                        decision.code_verifier,
                        redirect,
                        "device sign-in",
                    )
                except LoginError:
                    pass  # recorded on the flow by _exchange
                return
            await self._db.run(flows.finish, flow.id, flows.EXPIRED, "the device code expired")
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the flow must not stay pending forever on a surprise
            log.exception("device login failed flow=%s", flow.id)
            await self._db.run(flows.finish, flow.id, flows.FAILED, "internal error while polling")

    async def stop(self) -> None:
        for task in list(self._device_tasks.values()):
            task.cancel()
        for task in list(self._device_tasks.values()):
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- common --------------------------------------------------------------------------------------
    def jobs(self) -> list[PeriodicJob]:
        return [PeriodicJob("device-login-rescue", DEVICE_RESCUE_INTERVAL_S, self.resume_device_flows)]

    async def status(self, flow_id: str) -> flows.Flow | None:
        return await self._db.run(flows.get, flow_id)

    async def _check_reauth_target(self, account_id: int | None) -> None:
        if account_id is not None:
            try:
                await self._db.run(store.get_account, account_id)
            except store.AccountNotFound:
                raise LoginError(f"no account {account_id}") from None

    async def _exchange(
        self, flow: flows.Flow, code: str, verifier: str, redirect_uri: str, source: str
    ) -> Completion:
        try:
            answer = await oauth.exchange_code(self._session(), self._auth, code, verifier, redirect_uri)
            creds = credentials_from_tokens(
                answer.access_token, answer.refresh_token, answer.id_token, source
            )
            if flow.reauth_account_id is not None:
                result = await self._db.run(
                    store.replace_credentials, flow.reauth_account_id, creds, self._box
                )
            else:
                result = await self._db.run(
                    store.upsert_credentials, creds, self._box, self._db.account_capacity
                )
        except (
            oauth.OAuthError,
            InvalidAuthJson,
            store.AccountMismatch,
            store.AccountNotFound,
            store.PoolFull,
        ) as exc:
            message = f"sign-in failed: {exc}"
            await self._db.run(flows.finish, flow.id, flows.FAILED, message)
            log.warning("sign-in failed flow=%s kind=%s error=%s", flow.id, flow.kind, type(exc).__name__)
            raise LoginError(message) from None
        finished = await self._db.run(flows.finish, flow.id, flows.COMPLETED, "", result.account.id)
        log.info(
            "sign-in completed flow=%s kind=%s account=%d created=%s",
            flow.id,
            flow.kind,
            result.account.id,
            result.created,
        )
        await self._on_changed()
        return Completion(finished or flow, result.account.email)
