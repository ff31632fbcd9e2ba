"""Per-model limits: an account can be out of one model's bucket (the backend's `codex_other` limit
family) while its own windows and other models still work. Owns ModelBuckets: which bucket meters which
model (learned from the backend's refusals), and until when each (account, bucket) is spent. Pure and
in memory; the database copy (server.accounts.buckets) reaches every worker through the reloader."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketState:
    """One account's view of one bucket: its last known use, and until when it refuses its models."""

    account_id: int
    bucket: str
    used_percent: float | None
    reset_at: float | None
    cooling_until: float  # 0: not spent
    models: tuple[str, ...]  # the models known to be metered by this bucket
    updated_at: float

    def public(self, now: float) -> dict:
        return {
            "bucket": self.bucket,
            "models": sorted(self.models),
            "used_percent": self.used_percent,
            "reset_at": self.reset_at,
            "cooldown_until": self.cooling_until if self.cooling_until > now else None,
            "updated_at": self.updated_at,
        }


class ModelBuckets:
    """One per worker. `blocked(model)` is the hot-path read: None (no cost) unless a bucket is known
    for the model and some account has it spent."""

    def __init__(self) -> None:
        self._states: dict[tuple[int, str], BucketState] = {}
        self._bucket_of: dict[str, str] = {}
        self._until: dict[str, dict[int, float]] = {}
        self._by_account: dict[int, list[BucketState]] = {}  # by bucket name: the account list reads it

    def install(self, states: Iterable[BucketState]) -> None:
        """The database's rows (a reload); newer local observations survive it."""
        fresh = {(s.account_id, s.bucket): s for s in states}
        for key, local in self._states.items():
            stored = fresh.get(key)
            if stored is None or stored.updated_at < local.updated_at:
                fresh[key] = local if stored is None else _merged(stored, local)
        self._states = fresh
        self._index()

    def note(self, state: BucketState) -> BucketState:
        """A bucket seen now (a refusal or a poll): keep it, and what it meters; answers the merged state."""
        key = (state.account_id, state.bucket)
        known = self._states.get(key)
        merged = state if known is None else _merged(known, state)
        self._states[key] = merged
        self._index()
        return merged

    def bucket_of(self, model: str) -> str | None:
        return self._bucket_of.get(model)

    def blocked(self, model: str, now: float) -> dict[int, float] | None:
        """The accounts whose bucket for `model` is spent, with when it resets; None if none is."""
        bucket = self._bucket_of.get(model)
        if bucket is None:
            return None
        until = self._until.get(bucket)
        if not until:
            return None
        live = {account_id: end for account_id, end in until.items() if end > now}
        return live or None

    def of_account(self, account_id: int, now: float) -> list[dict]:
        return [state.public(now) for state in self._by_account.get(account_id, ())]

    def _index(self) -> None:
        bucket_of: dict[str, str] = {}
        until: dict[str, dict[int, float]] = {}
        by_account: dict[int, list[BucketState]] = {}
        for key in sorted(self._states):  # (account, bucket): each account's list in bucket order
            state = self._states[key]
            for model in state.models:
                bucket_of[model] = state.bucket
            if state.cooling_until:
                until.setdefault(state.bucket, {})[state.account_id] = state.cooling_until
            by_account.setdefault(state.account_id, []).append(state)
        self._bucket_of, self._until, self._by_account = bucket_of, until, by_account


def _merged(old: BucketState, new: BucketState) -> BucketState:
    """The newer observation, keeping the models either one knew."""
    newer, older = (new, old) if new.updated_at >= old.updated_at else (old, new)
    models = tuple(sorted(set(newer.models) | set(older.models)))
    return BucketState(
        newer.account_id,
        newer.bucket,
        newer.used_percent,
        newer.reset_at,
        newer.cooling_until,
        models,
        newer.updated_at,
    )
