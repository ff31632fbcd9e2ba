"""Per-model limits met during failover: a usage-limit refusal while the account's own windows are not
spent is its model bucket's (the backend meters some models in their own `x-codex-other-*` family).
Such a refusal benches that (account, bucket) until its reset instead of the whole account, teaches
every worker which bucket meters the model, and the request moves on to another account."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from server.accounts import buckets as bucket_store
from server.accounts.store import AccountRecord
from server.balancer.buckets import BucketState
from server.upstream import ratelimits
from server.upstream.failures import FailureKind, UpstreamFailure

log = logging.getLogger(__name__)
FALLBACK_S = 3600.0  # a refusal that says no reset time: bench the bucket for an hour


def noted(trace, failure: UpstreamFailure, headers: Mapping[str, str] | None) -> UpstreamFailure:
    """Keep the windows a usage-limit refusal reported on the trace (read only on that failure)."""
    if failure.kind is FailureKind.USAGE_LIMIT and headers:
        now = time.time()
        trace.last_snapshot = ratelimits.from_headers(headers, now)
        trace.last_buckets = ratelimits.model_buckets_from_headers(headers, now)
    return failure


def record(ctx, trace, account: AccountRecord, failure: UpstreamFailure) -> bool:
    """True when `failure` is the requested model's bucket (now recorded), not the account's windows."""
    if failure.kind is not FailureKind.USAGE_LIMIT or not trace.model:
        return False
    now = time.time()
    snapshot, windows = trace.last_snapshot, trace.last_buckets or {}
    trace.last_snapshot = trace.last_buckets = None
    if snapshot is None or _own_windows_spent(snapshot):
        return False  # the account is out (or we cannot tell): the whole account sits out
    spent = [name for name, window in windows.items() if window.exhausted]
    known = ctx.buckets.bucket_of(trace.model)
    bucket = known if known in spent or (known and not spent) else (spent[0] if spent else None)
    if bucket is None:
        bucket = "model:" + trace.model  # a refusal naming no bucket: the model is its own
    window = windows.get(bucket)
    until = failure.retry_at or (window.reset_at if window else None) or now + FALLBACK_S
    state = ctx.buckets.note(
        BucketState(
            account.id,
            bucket,
            window.used_percent if window else 100.0,
            window.reset_at if window else until,
            until,
            (trace.model,),
            now,
        )
    )
    log.info(
        "model limit account=%d model=%s bucket=%s cooldown_s=%.0f",
        account.id,
        trace.model,
        bucket,
        until - now,
    )
    ctx.background.spawn(_persist(ctx, state), "model-bucket-save")
    return True


def _own_windows_spent(snapshot: ratelimits.RateLimitSnapshot) -> bool:
    if snapshot.primary is None and snapshot.secondary is None:
        return True  # no windows said: assume the account's own limit, as before
    if snapshot.primary is not None and snapshot.primary.exhausted:
        return True
    secondary = snapshot.secondary
    return secondary is not None and secondary.exhausted and not snapshot.credits_usable


async def _persist(ctx, state: BucketState) -> None:
    try:
        await ctx.db.run(bucket_store.save, [state])
        ctx.roster.changed()  # the host's other workers reload it at once; replicas at their poll
    except Exception:  # a lost write is re-learned from the next refusal
        log.exception("could not record model bucket account=%d bucket=%s", state.account_id, state.bucket)
