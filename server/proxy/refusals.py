"""What the client is told when failover cannot serve its request: the error for an upstream's refusal of
the request itself, for a pool with no account to offer, and for a request every attempt failed."""

from __future__ import annotations

from server.balancer.shortage import ALL_EXHAUSTED, NoAccountAvailable
from server.errors import (
    ModelNotSupported,
    NoAccounts,
    ProxyError,
    RateLimited,
    UpstreamFailed,
    UpstreamRejected,
    UsageLimitReached,
    retry_after,
)
from server.upstream.failures import FailureKind, UpstreamFailure

_NO_ACCOUNT = {
    "no_accounts": (
        "No ChatGPT accounts have been added to codex-lb yet: add one with `codex-lb accounts "
        "import ~/.codex/auth.json` or `codex-lb accounts login` (or POST /api/accounts/import, or "
        "the dashboard)."
    ),
    "all_paused": "Every account in the pool is paused.",
    "all_reauth_required": "Every account in the pool needs to sign in again.",
    "all_deactivated": "Every account in the pool has been deactivated upstream.",
}


def rejected(failure: UpstreamFailure) -> ProxyError:
    """A rejection of the request itself (400…): the client sees the upstream's message and code."""
    return UpstreamRejected(
        failure.message or "The request was rejected upstream.", failure.status, failure.code
    )


def no_account(exc: NoAccountAvailable, last: UpstreamFailure | None) -> ProxyError:
    """The balancer has no account to offer (`last`: what the request's previous attempt met)."""
    if exc.reason == ALL_EXHAUSTED:
        return UsageLimitReached("Every account in the pool has reached its usage limit.", exc.retry_at)
    if exc.reason == "all_cooling_down":
        if last is not None and last.kind is FailureKind.RATE_LIMIT:
            return RateLimited("Every account in the pool is rate limited; retry shortly.", exc.retry_at)
        return NoAccounts(
            "Every account in the pool is cooling down after upstream errors; retry shortly.",
            headers=retry_after(exc.retry_at),
        )
    if exc.reason == "no_plan_for_model":
        return ModelNotSupported("No account in the pool is on a ChatGPT plan that offers this model.")
    message = _NO_ACCOUNT.get(exc.reason, f"No account can serve this request ({exc.reason}).")
    return NoAccounts(message, headers=retry_after(exc.retry_at))


def exhausted(last: UpstreamFailure | None) -> ProxyError:
    """Every attempt failed: the client hears about the last one."""
    if last is None:
        return NoAccounts("No account could serve the request.")
    if last.kind in (FailureKind.CLIENT_ERROR, FailureKind.MODEL_NOT_SUPPORTED):
        return rejected(last)
    if last.kind in (FailureKind.USAGE_LIMIT, FailureKind.NO_QUOTA):
        return UsageLimitReached(last.message or "Usage limit reached.", last.retry_at)
    if last.kind is FailureKind.AUTH:
        return NoAccounts(
            "The account that could serve this request needs to sign in again (its token was rejected)."
        )
    if last.kind is FailureKind.DEACTIVATED:
        return NoAccounts("The accounts that could serve this request have been deactivated upstream.")
    if last.kind is FailureKind.RATE_LIMIT:
        return RateLimited(last.message or "Rate limited upstream.", last.retry_at)
    return UpstreamFailed(
        f"Upstream failed on every attempt: {last.message or last.code}",
        status=504 if last.status == 504 else 502,
        code=last.code or "upstream_error",
    )


def not_in_pool() -> ProxyError:
    return NoAccounts("None of the accounts this API key may use is in the pool any more.")


def egress_down() -> ProxyError:
    return NoAccounts("Every account that could serve this request is bound to an egress proxy that is down.")
