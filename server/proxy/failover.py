"""Choosing an account and opening an upstream stream, failing over invisibly until content arrives.

An upstream rejection (HTTP error, connection error, or an error event inside a 200 stream) before the
first content event cools the account down as its kind warrants and moves the request to another one;
a 401 refreshes the token once (single-flight) and retries the same account.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace

import aiohttp

from server import metrics
from server.accounts import store
from server.accounts.refresh import RefreshFailed
from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.balancer.shortage import ALL_EXHAUSTED, NoAccountAvailable
from server.errors import ProxyError
from server.proxy import model_limits
from server.proxy.context import ProxyContext
from server.proxy.trace import JsonAnswer, OpenedStream, Trace
from server.upstream import failures, headers, ratelimits
from server.upstream.events import FAILURE_EVENTS, PRELUDE_EVENTS, STREAM_INCOMPLETE
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.sse import SSEEvent, SSEScanner
from server.upstream.stream import SSEStream

log = logging.getLogger(__name__)

AT_CAPACITY_WAIT_S = 0.05
AT_CAPACITY_MAX_WAIT_S = 30.0


async def open_stream(
    ctx: ProxyContext,
    url: str,
    body: bytes,
    forwarded: dict[str, str],
    session_key: str | None,
    trace: Trace,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
) -> OpenedStream:
    """An upstream Responses stream that has produced its first content event. `allowed_accounts`:
    the account ids an API key is restricted to (None: the whole pool); `model_plans`: only accounts on
    these plans may serve the request (None: any)."""

    async def attempt(candidate: Candidate, account: AccountRecord):
        return await _try_stream(ctx, url, body, forwarded, candidate, account, trace)

    return await _with_failover(
        ctx, session_key, trace, attempt, True, allowed_accounts=allowed_accounts, model_plans=model_plans
    )


async def post_json(
    ctx: ProxyContext,
    url: str,
    body: bytes,
    forwarded: dict[str, str],
    session_key: str | None,
    trace: Trace,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
) -> JsonAnswer:
    """A JSON call (compaction) with the same account choice and failover as streams."""

    async def attempt(candidate: Candidate, account: AccountRecord):
        return await _try_json(ctx, url, body, forwarded, candidate, account, trace)

    return await _with_failover(
        ctx, session_key, trace, attempt, False, allowed_accounts=allowed_accounts, model_plans=model_plans
    )


async def post_form(
    ctx: ProxyContext,
    url: str,
    form: Callable[[], aiohttp.FormData],
    forwarded: dict[str, str],
    trace: Trace,
    allowed_accounts: Collection[int] | None = None,
) -> JsonAnswer:
    """A multipart call (transcription) with the same account choice and failover; `form` builds a fresh
    body per attempt (an aiohttp FormData can be sent only once)."""

    async def attempt(candidate: Candidate, account: AccountRecord):
        return await _try_json(ctx, url, form, forwarded, candidate, account, trace)

    return await _with_failover(ctx, None, trace, attempt, False, allowed_accounts=allowed_accounts)


async def _with_failover(
    ctx: ProxyContext,
    session_key: str | None,
    trace: Trace,
    attempt,
    keep_slot: bool,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
):
    excluded: set[int] = set()
    refreshed: set[int] = set()
    retry: tuple[Candidate, AccountRecord] | None = None
    while retry is not None or trace.attempts < ctx.settings.max_attempts:
        if retry is None:
            candidate, account = await _choose(
                ctx, session_key, excluded, trace, allowed_accounts, model_plans
            )
            trace.attempts += 1
        else:
            # The same account with its refreshed token: the 401 was the token's fault, not the
            # account's, so this try does not spend one of the request's attempts.
            (candidate, account), retry = retry, None
        trace.account = account
        ctx.balancer.acquire(candidate)
        result = None
        try:
            result = await attempt(candidate, account)
        finally:
            # A successful stream keeps its in-flight slot until it is settled.
            if not (keep_slot and isinstance(result, OpenedStream)):
                ctx.balancer.release(candidate)
        if not isinstance(result, UpstreamFailure):
            return result
        trace.last_failure = result
        trace.failovers.append(f"{account.id}:{result.code or result.kind.value}")
        if result.kind is FailureKind.AUTH and account.id not in refreshed:
            refreshed.add(account.id)
            fresh = await _refresh(ctx, account)
            if fresh is not None:
                retry = (candidate, fresh)
                continue
        if not result.allows_failover:
            raise _client_error(result)
        if not model_limits.record(ctx, trace, account, result):  # a model's bucket, not the account
            await _penalise(ctx, candidate, account, result)
        metrics.failover(result.kind.value)
        excluded.add(account.id)
    raise _exhausted_error(trace.last_failure)


async def _choose(
    ctx: ProxyContext,
    session_key: str | None,
    excluded: set[int],
    trace: Trace,
    allowed_accounts: Collection[int] | None = None,
    model_plans: Collection[str] | None = None,
) -> tuple[Candidate, AccountRecord]:
    waited = 0.0
    while True:
        candidates = ctx.roster.candidates
        if allowed_accounts is not None:
            candidates = [c for c in candidates if c.account_id in allowed_accounts]
            if not candidates:
                raise ProxyError(
                    "None of the accounts this API key may use is in the pool any more.",
                    status=503,
                    type="server_error",
                    code="no_accounts",
                )
        now = time.time()
        candidates = _routable(ctx, candidates, now)
        try:
            selection = ctx.balancer.select(
                candidates,
                session_key=session_key,
                exclude=excluded,
                now=now,
                model_plans=model_plans,
                blocked_until=ctx.buckets.blocked(trace.model, now) if trace.model else None,
            )
        except NoAccountAvailable as exc:
            if excluded and trace.last_failure is not None and exc.reason != ALL_EXHAUSTED:
                # Every account that could serve it has failed this request: report what they said.
                raise _exhausted_error(trace.last_failure) from None
            raise _no_account_error(exc, trace.last_failure) from None
        if not selection.over_cap or waited >= AT_CAPACITY_MAX_WAIT_S:
            break
        # Every eligible account already runs its cap of concurrent streams: queue briefly.
        await asyncio.sleep(AT_CAPACITY_WAIT_S)
        waited += AT_CAPACITY_WAIT_S
    trace.routing = selection.routing
    return selection.candidate, ctx.roster.get(selection.candidate.account_id)


def _routable(ctx: ProxyContext, candidates, now: float):
    """Accounts whose egress proxy is down are not chosen at all (fail closed, before the first byte)."""
    egress = ctx.upstream.egress
    if not egress.proxies:
        return candidates
    routable = [c for c in candidates if egress.unavailable(c.account_id, now) is None]
    if candidates and not routable:
        raise ProxyError(
            "Every account that could serve this request is bound to an egress proxy that is down.",
            status=503,
            type="server_error",
            code="no_accounts",
        )
    return routable


async def _try_stream(
    ctx: ProxyContext,
    url: str,
    body: bytes,
    forwarded: dict[str, str],
    candidate: Candidate,
    account: AccountRecord,
    trace: Trace,
) -> OpenedStream | UpstreamFailure:
    request_headers = headers.for_responses(forwarded, account.access_token, account.chatgpt_account_id)
    if trace.request_id:
        request_headers.setdefault("x-client-request-id", trace.request_id)
    trace.upstream_sent_mono = time.monotonic()
    # An upstream that hangs before its head (or before its first content) is given up on after the
    # attempt's budget, not after the 300 s read timeout, so failover still has time to work.
    first_byte = asyncio.get_running_loop().time() + trace.attempt_budget(ctx.settings)
    try:
        route = ctx.upstream.route(account.id)  # raises (fail closed) when its proxy is down
        trace.egress = route.label
        async with asyncio.timeout_at(first_byte):
            response = await ctx.upstream.open_stream(url, body, request_headers, route.session)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return failures.classify_connection_error(exc)
    now = time.time()
    snapshot = ratelimits.from_headers(response.headers, now)
    ctx.balancer.note_windows(candidate, snapshot)
    if response.status != 200:
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""
        response.release()
        return model_limits.noted(trace, failures.classify_http(response.status, raw, now), response.headers)
    try:
        async with asyncio.timeout_at(first_byte):
            return await _read_prelude(response, candidate, account, trace, snapshot)
    except (aiohttp.ClientError, TimeoutError) as exc:
        response.close()
        return failures.classify_connection_error(exc)


async def _read_prelude(
    response: aiohttp.ClientResponse,
    candidate: Candidate,
    account: AccountRecord,
    trace: Trace,
    snapshot: ratelimits.RateLimitSnapshot | None,
) -> OpenedStream | UpstreamFailure:
    """Read until the first content event (the stream is open) or a failure event (it is not)."""
    scanner = SSEScanner()
    buffered: list[bytes] = []
    events: list[SSEEvent] = []
    async for chunk in response.content.iter_any():
        buffered.append(chunk)
        fresh = scanner.feed(chunk)
        events.extend(fresh)
        for event in fresh:
            if event.name in PRELUDE_EVENTS:
                continue
            if event.name in FAILURE_EVENTS:
                response.close()
                failure = failures.classify_event(event.data(), time.time())
                return model_limits.noted(trace, failure, response.headers)
            trace.first_content_mono = time.monotonic()
            return OpenedStream(
                SSEStream(response, scanner), candidate, account, events, snapshot, b"".join(buffered)
            )
    response.close()
    return UpstreamFailure(
        kind=FailureKind.TRANSIENT,
        retry_at=None,
        code=STREAM_INCOMPLETE,
        message="upstream closed the stream before any content",
        status=502,
    )


async def _try_json(
    ctx: ProxyContext,
    url: str,
    body: bytes | Callable[[], aiohttp.FormData],
    forwarded: dict[str, str],
    candidate: Candidate,
    account: AccountRecord,
    trace: Trace,
) -> JsonAnswer | UpstreamFailure:
    request_headers = headers.for_json(account.access_token, account.chatgpt_account_id, forwarded)
    trace.upstream_sent_mono = time.monotonic()
    try:
        route = ctx.upstream.route(account.id)  # raises (fail closed) when its proxy is down
        trace.egress = route.label
        if callable(body):
            status, answer_headers, raw = await ctx.upstream.post_form(
                url, body(), request_headers, route.session
            )
        else:
            status, answer_headers, raw = await ctx.upstream.post_json(
                url, body, request_headers, route.session
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return failures.classify_connection_error(exc)
    now = time.time()
    snapshot = ratelimits.from_headers(answer_headers, now)
    ctx.balancer.note_windows(candidate, snapshot)
    if status != 200:
        return model_limits.noted(trace, failures.classify_http(status, raw, now), answer_headers)
    trace.first_content_mono = time.monotonic()
    ctx.balancer.record_success(candidate, snapshot, now)
    return JsonAnswer(status, answer_headers, raw, account)


async def _refresh(ctx: ProxyContext, account: AccountRecord) -> AccountRecord | None:
    """The account with a working token (refreshed once for every request that met the 401), or None
    when the refresh failed."""
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


async def _penalise(
    ctx: ProxyContext, candidate: Candidate, account: AccountRecord, failure: UpstreamFailure
):
    until = ctx.balancer.record_failure(candidate, failure, time.time())
    log.info(
        "upstream rejected account=%d kind=%s code=%s status=%d cooldown_s=%.1f",
        account.id,
        failure.kind.name,
        failure.code,
        failure.status,
        max(0.0, until - time.time()),
    )
    status = _persistent_status(failure)
    if status is not None:
        # Account states outlive this worker: write them through (off the request's critical path).
        reason = f"{failure.code}: {failure.message}"[:300]
        task = asyncio.create_task(_persist_status(ctx, account.id, status, reason, failure.retry_at or 0.0))
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()


def _persistent_status(failure: UpstreamFailure) -> str | None:
    if failure.kind is FailureKind.DEACTIVATED:
        return "deactivated"
    if failure.kind in (FailureKind.USAGE_LIMIT, FailureKind.NO_QUOTA):
        return "quota_exceeded"
    return None


async def _persist_status(ctx: ProxyContext, account_id: int, status: str, reason: str, until: float) -> None:
    try:
        if await ctx.db.run(store.set_status, account_id, status, reason, until):
            ctx.roster.changed()
    except Exception:  # a lost state write is re-learned from the next upstream answer
        log.exception("could not record account state account=%d status=%s", account_id, status)


def _client_error(failure: UpstreamFailure) -> ProxyError:
    """A rejection of the request itself (400…): the client sees the upstream's message and code."""
    return ProxyError(
        failure.message or "The request was rejected upstream.",
        status=failure.status,
        type="invalid_request_error",
        code=failure.code or "invalid_request_error",
    )


def _no_account_error(exc: NoAccountAvailable, last: UpstreamFailure | None) -> ProxyError:
    retry_headers = _retry_after(exc.retry_at)
    if exc.reason == "all_exhausted":
        return ProxyError(
            "Every account in the pool has reached its usage limit.",
            status=429,
            type="usage_limit_reached",
            code="usage_limit_reached",
            headers=retry_headers,
            extra={"resets_at": int(exc.retry_at) if exc.retry_at else None},
        )
    if exc.reason == "all_cooling_down":
        if last is not None and last.kind is FailureKind.RATE_LIMIT:
            return ProxyError(
                "Every account in the pool is rate limited; retry shortly.",
                status=429,
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers=retry_headers,
            )
        return ProxyError(
            "Every account in the pool is cooling down after upstream errors; retry shortly.",
            status=503,
            type="server_error",
            code="no_accounts",
            headers=retry_headers,
        )
    if exc.reason == "no_plan_for_model":
        return ProxyError(
            "No account in the pool is on a ChatGPT plan that offers this model.",
            status=400,
            type="invalid_request_error",
            code="model_not_supported",
            param="model",
        )
    messages = {
        "no_accounts": (
            "No ChatGPT accounts have been added to codex-lb yet: add one with `codex-lb accounts "
            "import ~/.codex/auth.json` or `codex-lb accounts login` (or POST /api/accounts/import, or "
            "the dashboard)."
        ),
        "all_paused": "Every account in the pool is paused.",
        "all_reauth_required": "Every account in the pool needs to sign in again.",
        "all_deactivated": "Every account in the pool has been deactivated upstream.",
    }
    message = messages.get(exc.reason, f"No account can serve this request ({exc.reason}).")
    return ProxyError(message, status=503, type="server_error", code="no_accounts", headers=retry_headers)


def _exhausted_error(last: UpstreamFailure | None) -> ProxyError:
    if last is None:
        return ProxyError(
            "No account could serve the request.", status=503, type="server_error", code="no_accounts"
        )
    if last.kind in (FailureKind.CLIENT_ERROR, FailureKind.MODEL_NOT_SUPPORTED):
        return _client_error(last)
    if last.kind in (FailureKind.USAGE_LIMIT, FailureKind.NO_QUOTA):
        return ProxyError(
            last.message or "Usage limit reached.",
            status=429,
            type="usage_limit_reached",
            code="usage_limit_reached",
            headers=_retry_after(last.retry_at),
            extra={"resets_at": int(last.retry_at) if last.retry_at else None},
        )
    if last.kind is FailureKind.AUTH:
        return ProxyError(
            "The account that could serve this request needs to sign in again (its token was rejected).",
            status=503,
            type="server_error",
            code="no_accounts",
        )
    if last.kind is FailureKind.DEACTIVATED:
        return ProxyError(
            "The accounts that could serve this request have been deactivated upstream.",
            status=503,
            type="server_error",
            code="no_accounts",
        )
    if last.kind is FailureKind.RATE_LIMIT:
        return ProxyError(
            last.message or "Rate limited upstream.",
            status=429,
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=_retry_after(last.retry_at),
        )
    return ProxyError(
        f"Upstream failed on every attempt: {last.message or last.code}",
        status=504 if last.status == 504 else 502,
        type="server_error",
        code=last.code or "upstream_error",
    )


def _retry_after(retry_at: float | None) -> dict[str, str]:
    if not retry_at:
        return {}
    return {"retry-after": str(max(1, int(retry_at - time.time() + 0.999)))}
