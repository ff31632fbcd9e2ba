"""Choosing an account and trying it, failing over invisibly until content arrives: the `Failover` of one
request, whose one loop (`run`) drives an opener per transport: HTTP calls (its open_stream and post)
and turns on pooled upstream sockets (socket_turns.SocketOpener).

An upstream rejection (HTTP error, connection error, or an error event inside a 200 stream) before the
first content event cools the account down as its kind warrants and moves the request to another one;
a 401 refreshes the token once (single-flight) and retries the same account.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, Protocol, TypeVar

import aiohttp

from server import metrics
from server.accounts.refresh import RefreshFailed
from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.balancer.shortage import ALL_EXHAUSTED, NoAccountAvailable
from server.errors import ProxyError
from server.proxy import account_status, attempts, model_limits, refusals
from server.proxy.context import ProxyContext
from server.proxy.trace import JsonAnswer, OpenedStream, Trace
from server.upstream.failures import FailureKind, UpstreamFailure

log = logging.getLogger(__name__)

AT_CAPACITY_WAIT_S = 0.05
AT_CAPACITY_MAX_WAIT_S = 30.0
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)  # an opener only produces its T


@dataclass(frozen=True, slots=True)
class Retry:
    """A try that neither served the request nor failed its account: what the loop does next."""

    same_account: bool  # try the account again; else leave it out of the rest of the request
    spent: bool  # the try counts as one of the request's attempts


SAME_ACCOUNT = Retry(same_account=True, spent=True)  # e.g. a replay of the full input on it
NOT_AN_ATTEMPT = Retry(same_account=True, spent=False)  # the account was not at fault: again, for free
NO_ROOM = Retry(same_account=False, spent=False)  # the account cannot take it now; nothing was sent


class NotTried(Exception):
    """An opener gives up on its transport before anything reached the upstream (the caller then uses
    another): the try spends none of the request's attempts."""


class Opener(Protocol[T_co]):
    """One transport's way to try an account, for `Failover.run`."""

    @property
    def final(self) -> Collection[FailureKind]:
        """Failure kinds that end the request on this transport."""
        ...

    async def choose(self, failover: Failover) -> tuple[Candidate, AccountRecord]: ...

    def open(
        self, candidate: Candidate, account: AccountRecord
    ) -> Awaitable[T_co | UpstreamFailure | Retry]: ...


class HttpOpener(Generic[T]):
    """Tries over HTTP: whichever account the balancer offers, one request each (`send`)."""

    __slots__ = ("send",)
    final: Collection[FailureKind] = ()

    def __init__(self, send: Callable[[Candidate, AccountRecord], Awaitable[T | UpstreamFailure]]) -> None:
        self.send = send

    async def choose(self, failover: Failover) -> tuple[Candidate, AccountRecord]:
        return await failover.choose()

    def open(self, candidate: Candidate, account: AccountRecord) -> Awaitable[T | UpstreamFailure]:
        return self.send(candidate, account)


class Failover:
    """One request's way through the pool: `choose` an account, `attempt` it, and learn from each
    failure (`after_failure`) until an attempt serves the request or none is left (`exhausted`).

    `allowed_accounts`: the account ids an API key is restricted to (None: the whole pool);
    `model_plans`: only accounts on these plans may serve the request (None: any).
    """

    def __init__(
        self,
        ctx: ProxyContext,
        trace: Trace,
        session_key: str | None,
        allowed_accounts: Collection[int] | None = None,
        model_plans: Collection[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.trace = trace
        self.session_key = session_key
        self.allowed_accounts = allowed_accounts
        self.model_plans = model_plans
        self.excluded: set[int] = set()  # accounts that failed this request
        self._refreshed: set[int] = set()  # accounts whose token this request refreshed

    @property
    def attempts_left(self) -> bool:
        return self.trace.attempts < self.ctx.settings.max_attempts

    async def open_stream(self, url: str, body: bytes, forwarded: dict[str, str]) -> OpenedStream:
        """An upstream Responses stream that has produced its first content event."""
        send = partial(attempts.try_stream, self.ctx, url, body, forwarded, trace=self.trace)
        return await self.run(HttpOpener(send))

    async def post(
        self, url: str, body: bytes | Callable[[], aiohttp.FormData], forwarded: dict[str, str]
    ) -> JsonAnswer:
        """A JSON call (compaction), or a multipart one (transcription: `body` builds a fresh form per
        attempt, as an aiohttp FormData can be sent only once)."""
        send = partial(attempts.try_json, self.ctx, url, body, forwarded, trace=self.trace)
        return await self.run(HttpOpener(send))

    async def run(self, opener: Opener[T]) -> T:
        """Try accounts until one serves the request, within its attempts and its failover deadline;
        raises the client's error when none does. Every try counts as an attempt unless it turns out
        not to be one (a `Retry` that is not `spent`, `NotTried`)."""
        again: tuple[Candidate, AccountRecord] | None = None  # the same account, once more
        while self.attempts_left and self.trace.attempt_budget(self.ctx.settings) > 0:
            candidate, account = again or await opener.choose(self)
            again = None
            self.trace.attempts += 1
            try:
                result = await self.attempt(candidate, account, partial(opener.open, candidate, account))
            except NotTried:
                self.trace.attempts -= 1
                raise
            if isinstance(result, UpstreamFailure):
                fresh = await self.after_failure(candidate, account, result, opener.final)
                if fresh is None:
                    continue
                # The 401 was the token's fault, not the account's: the same account with its
                # refreshed token, and this try spends none of the request's attempts.
                result, account = NOT_AN_ATTEMPT, fresh
            elif not isinstance(result, Retry):
                return result
            if result.same_account:
                again = (candidate, account)
            else:
                self.excluded.add(account.id)
            if not result.spent:
                self.trace.attempts -= 1
        raise self.exhausted()

    async def choose(self) -> tuple[Candidate, AccountRecord]:
        """The account to try next; raises the client's error when the pool has none to offer."""
        ctx, trace = self.ctx, self.trace
        waited = 0.0
        while True:
            now = time.time()
            # The same tuple for the same roster, key and egress state: the balancer's table for it is
            # built once, not per request (and per retry) as when this was a fresh list.
            candidates = ctx.views.routable(self.allowed_accounts, now)
            if not candidates:
                _refuse_empty(ctx, self.allowed_accounts)
            try:
                selection = ctx.balancer.select(
                    candidates,
                    session_key=self.session_key,
                    exclude=self.excluded,
                    now=now,
                    model_plans=self.model_plans,
                    blocked_until=ctx.buckets.blocked(trace.model, now) if trace.model else None,
                )
            except NoAccountAvailable as exc:
                if self.excluded and trace.last_failure is not None and exc.reason != ALL_EXHAUSTED:
                    # Every account that could serve it has failed this request: report what they said.
                    raise self.exhausted() from None
                raise refusals.no_account(exc, trace.last_failure) from None
            if not selection.over_cap or waited >= AT_CAPACITY_MAX_WAIT_S:
                break
            # Every eligible account already runs its cap of concurrent streams: queue briefly.
            await asyncio.sleep(AT_CAPACITY_WAIT_S)
            waited += AT_CAPACITY_WAIT_S
        trace.routing = selection.routing
        return selection.candidate, ctx.roster.account_of(selection.candidate)

    async def attempt(
        self, candidate: Candidate, account: AccountRecord, run: Callable[[], Awaitable[T]]
    ) -> T:
        """Run one try on `account`, counted in its in-flight slot: a stream that opens keeps the slot
        until it is settled (Settlement.finish); anything else gives it back here."""
        self.trace.account = account
        self.ctx.balancer.acquire(candidate)
        result = None
        try:
            result = await run()
        finally:
            if not isinstance(result, OpenedStream):
                self.ctx.balancer.release(candidate)
        return result

    async def after_failure(
        self,
        candidate: Candidate,
        account: AccountRecord,
        failure: UpstreamFailure,
        final: Collection[FailureKind] = (),
    ) -> AccountRecord | None:
        """Learn from a failed attempt. Returns the account with a refreshed token when the same account
        should be tried again (a 401, once per account); raises the client's error when no other account
        can help (`final`: more kinds that end the request here); otherwise benches the account (or the
        model's bucket on it) and leaves it out of the rest of the request."""
        ctx, trace = self.ctx, self.trace
        trace.last_failure = failure
        trace.failovers.append(f"{account.id}:{failure.code or failure.kind.value}")
        if failure.kind is FailureKind.AUTH and account.id not in self._refreshed:
            self._refreshed.add(account.id)
            fresh = await self._refresh(account)
            if fresh is not None:
                return fresh
        if not failure.allows_failover or failure.kind in final:
            raise refusals.rejected(failure)
        if not model_limits.record(ctx, trace, account, failure):  # a model's bucket, not the account
            account_status.penalise(ctx, candidate, account, failure)
        metrics.failover(failure.kind.value)
        self.excluded.add(account.id)
        return None

    def exhausted(self) -> ProxyError:
        """The error for a request whose attempts all failed."""
        return refusals.exhausted(self.trace.last_failure)

    async def _refresh(self, account: AccountRecord) -> AccountRecord | None:
        """The account with a working token (refreshed once for every request that met the 401), or None
        when the refresh failed."""
        ctx = self.ctx
        try:
            token = await ctx.refresher.refresh(account.id, account.access_token)
        except RefreshFailed as exc:
            log.warning("refresh failed account=%d reauth=%s", account.id, exc.reauth_required)
            if exc.reauth_required:
                ctx.roster.note_status(account.id, "reauth_required")
                ctx.roster.changed()
            return None
        ctx.roster.update_access_token(account.id, token)
        ctx.roster.changed()
        return replace(account, access_token=token)


def _refuse_empty(ctx: ProxyContext, allowed_accounts: Collection[int] | None) -> None:
    """No account to route to: the key's accounts are all gone, or every one left has its egress proxy
    down (fail closed, before the first byte); an empty pool is the balancer's to report."""
    roster: Sequence[Candidate] = ctx.roster.candidates
    if allowed_accounts is not None:
        roster = [c for c in roster if c.account_id in allowed_accounts]
        if not roster:
            raise refusals.not_in_pool()
    if roster:
        raise refusals.egress_down()
