"""One attempt on one account: send the request upstream and read until the answer is known to be served
(a stream's first content event, a JSON answer) or refused (an HTTP error, an error event first, a
broken link, silence past the attempt's first-byte budget), which failover then acts on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.proxy import model_limits
from server.proxy.context import ProxyContext
from server.proxy.trace import JsonAnswer, OpenedStream, Trace
from server.upstream import failures, headers, ratelimits
from server.upstream.events import FAILURE_EVENTS, PRELUDE_EVENTS, STREAM_INCOMPLETE
from server.upstream.failures import FailureKind, UpstreamFailure
from server.upstream.sse import SSEEvent, SSEScanner
from server.upstream.stream import SSEStream


async def try_stream(
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


async def try_json(
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
