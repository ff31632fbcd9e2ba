"""What a failed attempt does to its account: the balancer benches it as the failure warrants, and a
failure that outlives the worker (deactivated, out of quota) is written through to the account's row
in the background, off the request's path."""

from __future__ import annotations

import logging
import time

from server.accounts import store
from server.accounts.store import AccountRecord
from server.balancer.candidates import Candidate
from server.proxy.context import ProxyContext
from server.upstream.failures import FailureKind, UpstreamFailure

log = logging.getLogger(__name__)


def penalise(
    ctx: ProxyContext, candidate: Candidate, account: AccountRecord, failure: UpstreamFailure
) -> None:
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
        ctx.background.spawn(
            _persist_status(ctx, account.id, status, reason, failure.retry_at or 0.0), "account-status-save"
        )


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
