"""Keeping accounts healthy in the background: usage polling, refreshing tokens before they expire,
returning accounts to active when their reset passes, and pruning usage history. Each is a periodic
job run by exactly one worker of the deployment (server.jobs leases)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, replace

import aiohttp
import orjson

from server.accounts import buckets, store
from server.accounts.poll_schedule import PollSchedule
from server.accounts.refresh import RefreshFailed, TokenRefresher
from server.balancer.buckets import BucketState
from server.balancer.slots import AccountSlots, Field
from server.balancer.windows import apply_to_slots
from server.db import Database
from server.jobs import PeriodicJob
from server.runtime.secretbox import SecretBox
from server.upstream import failures, ratelimits, wham
from server.upstream.failures import FailureKind

log = logging.getLogger(__name__)
USAGE_HISTORY_DAYS = 28
POLL_CONCURRENCY = 4
RATE_LIMITED_FALLBACK_S = 300.0
QUOTA_FALLBACK_S = 3600.0
REJECTED_POLL_REST_S = 300.0


def decide_status(snapshot: ratelimits.RateLimitSnapshot, now: float):
    """What a poll says about the account's state: a function of (status, status_until) for the store,
    answering (status, reason, until) when the state must change, else None."""
    primary, secondary = snapshot.primary, snapshot.secondary
    if primary is not None and primary.exhausted:
        # No reset time reported: assume a whole window (or five minutes) rather than "never".
        fallback = primary.window_minutes * 60.0 if primary.window_minutes else RATE_LIMITED_FALLBACK_S
        until = primary.reset_at or now + fallback
        target = ("rate_limited", "usage poll: primary window at 100%", until)
    elif secondary is not None and secondary.exhausted and not snapshot.credits_usable:
        target = (
            "quota_exceeded",
            "usage poll: weekly window at 100%",
            secondary.reset_at or now + QUOTA_FALLBACK_S,
        )
    else:
        target = ("active", "usage poll shows room", 0.0)

    def decide(status: str, status_until: float):
        if status not in ("active", "rate_limited", "quota_exceeded"):
            return None  # paused, reauth_required and deactivated wait for a person
        if status == target[0] and (status == "active" or abs(status_until - target[2]) < 1.0):
            return None
        return target

    return decide


def usage_row(snapshot: ratelimits.RateLimitSnapshot) -> store.UsageRow:
    p, s = snapshot.primary, snapshot.secondary
    return store.UsageRow(
        primary_used=p.used_percent if p else None,
        primary_window_minutes=p.window_minutes if p else None,
        primary_reset_at=p.reset_at if p else None,
        secondary_used=s.used_percent if s else None,
        secondary_window_minutes=s.window_minutes if s else None,
        secondary_reset_at=s.reset_at if s else None,
        credits_balance=snapshot.credits_balance,
    )


def polled_buckets(account_id: int, windows: dict, now: float) -> list[BucketState]:
    """The usage poll's per-model buckets (it does not say which models they meter: kept as known)."""
    return [
        BucketState(
            account_id,
            name,
            window.used_percent,
            window.reset_at,
            (window.reset_at or now + 3600.0) if window.exhausted else 0.0,
            (),
            now,
        )
        for name, window in windows.items()
    ]


def apply_stored_usage(slots: AccountSlots, slot: int, status: str, usage_json: str, now: float) -> None:
    """Put a polled snapshot (from the database) into the host's shared slot; an account the poll shows
    usable loses its cooldown, so it serves again at once."""
    try:
        snapshot = ratelimits.snapshot_from_json(orjson.loads(usage_json))
    except orjson.JSONDecodeError:
        return
    if snapshot is None:
        return
    apply_to_slots(slots, slot, snapshot)
    if status == "active" and slots.get(slot, Field.COOLDOWN_UNTIL) > now:
        slots.set(slot, Field.COOLDOWN_UNTIL, 0.0)
        slots.set(slot, Field.FAILURE_STREAK, 0.0)


@dataclass(frozen=True, slots=True)
class Answer:
    """One account's usage poll that answered windows (per-model buckets: by limit name)."""

    target: store.PollTarget
    snapshot: ratelimits.RateLimitSnapshot
    buckets: dict[str, ratelimits.UsageWindow]
    at: float
    refreshed: bool = False  # its token was refreshed to ask: every worker takes the new one

    def stored(self) -> store.PolledUsage:
        return store.PolledUsage(
            self.target.id,
            orjson.dumps(ratelimits.snapshot_to_json(self.snapshot)).decode(),
            usage_row(self.snapshot),
            self.snapshot.plan_type,
            decide_status(self.snapshot, self.at),
            self.at,
        )


def _answer(snapshot: ratelimits.RateLimitSnapshot | None, document: dict | None) -> Hashable | None:
    """What an account's usage said, without the moving parts (reset times): equal answers back off."""
    if snapshot is None:
        return None
    row = usage_row(snapshot)
    return (
        snapshot.plan_type,
        row.primary_used,
        row.primary_window_minutes,
        row.secondary_used,
        row.secondary_window_minutes,
        row.credits_balance,
        orjson.dumps(document.get("additional_rate_limits")),
    )


class Upkeep:
    """The background jobs of the accounts package, built once per worker (only one worker runs each)."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        slots: AccountSlots,
        refresher: TokenRefresher,
        session,
        upstream_base_url: str,
        on_accounts_changed,
    ) -> None:
        self._db = db
        self._box = box
        self._slots = slots
        self._refresher = refresher
        self._session = session
        self._base = upstream_base_url
        self._on_changed = on_accounts_changed
        self.polls = 0
        # Accounts whose usage endpoint refused us (401 after a refresh, 403): not polled for a while,
        # so a token the usage endpoint dislikes does not cause a refresh every interval.
        self._resting_until: dict[int, float] = {}
        self.schedule = PollSchedule(60.0)

    def jobs(self, settings) -> list[PeriodicJob]:
        self._refresh_ahead_s = settings.token_refresh_ahead_s
        self.schedule = PollSchedule(settings.usage_poll_interval_s)
        return [
            # Each account at its own moment of the interval (poll_schedule.py), not all at once.
            PeriodicJob("usage-poll", self.schedule.tick_s, self.poll_due, run_at_start=False),
            PeriodicJob(
                "token-refresh", settings.token_refresh_check_s, self.refresh_expiring, run_at_start=False
            ),
            PeriodicJob("usage-history-retention", 6 * 3600.0, self.prune_history),
        ]

    async def poll_usage(self) -> None:
        """Poll every account now (operators and tests; the job polls only the due ones), and have every
        worker of this host reload at once, so what it learned routes the next request."""
        await self._poll(None)
        await self._on_changed()

    async def poll_due(self) -> None:
        """The job's tick: poll the accounts whose moment in the interval has come."""
        ids = await self._db.run(store.poll_target_ids)
        due = self.schedule.due(ids, time.time())
        if due:
            await self._poll(due)
        else:
            await self._db.run(store.expire_statuses, time.time())

    async def _poll(self, only: list[int] | None) -> None:
        now = time.time()
        expired = await self._db.run(store.expire_statuses, now)
        targets = [
            t
            for t in await self._db.run(store.poll_targets, self._box, only)
            if self._resting_until.get(t.id, 0.0) <= now
        ]
        semaphore = asyncio.Semaphore(POLL_CONCURRENCY)

        async def one(target: store.PollTarget) -> Answer | bool:
            async with semaphore:
                return await self.poll_account(target)

        outcomes = await asyncio.gather(*(one(t) for t in targets))
        answers = [o for o in outcomes if isinstance(o, Answer)]
        changes = sum(o is True for o in outcomes) + len(expired) + await self._keep(answers)
        self.polls += 1
        log.info("usage poll done accounts=%d state_changes=%d", len(targets), changes)
        # Every worker reloads what the roster carries; a poll that moved only usage reaches them
        # without it (store.save_usage), and the slots of this host have it already.
        if changes and only is not None:
            await self._on_changed()

    async def _keep(self, answers: list[Answer]) -> int:
        """Store a tick's answers (one transaction) and put them into the slots; how many accounts
        changed what the roster carries (state, plan, access token, a bucket refusing its models)."""
        if not answers:
            return 0
        saved = await self._db.run(store.save_usage, [a.stored() for a in answers])
        for answer in answers:
            target, status = answer.target, saved.statuses.get(answer.target.id, "")
            apply_to_slots(self._slots, target.slot, answer.snapshot)
            if status == "active" and self._slots.get(target.slot, Field.COOLDOWN_UNTIL) > answer.at:
                self._slots.set(target.slot, Field.COOLDOWN_UNTIL, 0.0)
        changes = len(saved.changed) + sum(a.refreshed for a in answers)
        states = [s for a in answers for s in polled_buckets(a.target.id, a.buckets, a.at)]
        # A bucket that started or stopped refusing its models: every worker reloads.
        if states and await self._db.run(buckets.save, states):
            changes += 1
        return changes

    async def poll_account(self, target: store.PollTarget, retried: bool = False) -> Answer | bool:
        """Ask one account's usage: its Answer (stored by the caller with the tick's others), or, when it
        gave none, whether its state changed."""
        try:
            status, body = await wham.fetch_usage(
                self._session(target.id), self._base, target.access_token, target.chatgpt_account_id
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("usage poll failed account=%d error=%s", target.id, type(exc).__name__)
            self.schedule.polled(target.id, None, time.time())
            return False
        now = time.time()
        if status == 200:
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                document = None
            snapshot = ratelimits.from_wham_usage(document, now) if isinstance(document, dict) else None
            self.schedule.polled(target.id, _answer(snapshot, document), now)
            if snapshot is None:
                log.warning("usage poll answered no windows account=%d", target.id)
                return False
            return Answer(target, snapshot, ratelimits.model_buckets_from_wham(document, now), now)
        self.schedule.polled(target.id, None, now)
        failure = failures.classify_usage_poll(status, body, now)
        if failure.kind is FailureKind.AUTH and not retried:
            try:
                token = await self._refresher.refresh(target.id, target.access_token)
            except RefreshFailed as exc:
                return exc.reauth_required
            outcome = await self.poll_account(
                store.PollTarget(target.id, target.chatgpt_account_id, target.slot, target.status, token),
                True,
            )
            return replace(outcome, refreshed=True) if isinstance(outcome, Answer) else True
        if failure.kind is FailureKind.DEACTIVATED:
            reason = f"usage poll: {failure.code} {failure.message}".strip()[:300]
            return await self._db.run(store.set_status, target.id, "deactivated", reason)
        if status in (401, 403):
            self._resting_until[target.id] = now + REJECTED_POLL_REST_S
        log.warning(
            "usage poll rejected account=%d status=%d kind=%s code=%s",
            target.id,
            status,
            failure.kind.name,
            failure.code,
        )
        return False

    async def refresh_expiring(self) -> None:
        due = await self._db.run(store.refresh_due, self._box, time.time() + self._refresh_ahead_s)
        refreshed = 0
        for target in due:
            try:
                await self._refresher.refresh(target.id, target.access_token)
                refreshed += 1
            except RefreshFailed as exc:
                log.warning(
                    "refresh before expiry failed account=%d reauth=%s", target.id, exc.reauth_required
                )
        if due:
            log.info("tokens refreshed before expiry due=%d refreshed=%d", len(due), refreshed)
            await self._on_changed()

    async def prune_history(self) -> None:
        removed = await self._db.run(store.prune_usage_history, time.time() - USAGE_HISTORY_DAYS * 86400)
        if removed:
            log.info("usage history pruned rows=%d", removed)
