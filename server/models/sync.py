"""Fetches the upstream catalog with one account per plan and stores the merge (a periodic job).
Runs in one worker of one replica at a time (lease `job:models-sync`); the others reload from the DB."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import aiohttp
import orjson

from server.accounts.refresh import RefreshFailed, TokenRefresher
from server.accounts.roster import Roster
from server.accounts.store import AccountRecord
from server.db import Database
from server.models import store
from server.models.catalog import ModelRow
from server.models.registry import ModelRegistry
from server.upstream import headers
from server.upstream.client import UpstreamClient

log = logging.getLogger(__name__)
# The backend leaves out models newer than the asking client. We serve many client versions, so we ask
# as a client newer than any, store everything, and filter per client by `minimal_client_version`.
SYNC_CLIENT_VERSION = "999.0.0"
_USABLE = frozenset({"active", "rate_limited", "quota_exceeded"})
_TRIES_PER_PLAN = 2


class ModelSyncer:
    """`run` is called often (every CHECK_S); it fetches when the interval has passed, or at once when the
    pool gained a plan the last sync did not ask with (say, the first account was just added)."""

    CHECK_S = 15.0

    def __init__(
        self,
        db: Database,
        upstream: UpstreamClient,
        roster: Roster,
        refresher: TokenRefresher,
        registry: ModelRegistry,
        interval_s: float,
    ) -> None:
        self._db = db
        self._upstream = upstream
        self._roster = roster
        self._refresher = refresher
        self._registry = registry
        self._interval_s = interval_s
        self._last_sync = 0.0
        self._synced_plans: frozenset[str] = frozenset()
        self.url = f"{upstream.base_url}/codex/models?client_version={SYNC_CLIENT_VERSION}"

    @property
    def check_interval_s(self) -> float:
        return min(self.CHECK_S, self._interval_s)

    async def run(self) -> None:
        by_plan: dict[str, list[AccountRecord]] = {}
        for account in self._roster.accounts:
            if account.status in _USABLE:
                by_plan.setdefault(account.plan_type or "unknown", []).append(account)
        if not by_plan:
            return  # nothing to ask with: keep what is stored (or the bundled list)
        due = time.monotonic() - self._last_sync >= self._interval_s or self._last_sync == 0.0
        if not due and set(by_plan) <= self._synced_plans:
            return
        self._last_sync = time.monotonic()
        fetched: dict[str, list[dict]] = {}
        for plan in sorted(by_plan):
            models = await self._fetch_plan(by_plan[plan][:_TRIES_PER_PLAN])
            if models is not None:
                fetched[plan] = models
        if not fetched:
            log.warning("model sync failed plans=%s", ",".join(sorted(by_plan)))
            return
        self._synced_plans = frozenset(by_plan)
        failed = set(by_plan) - set(fetched)
        previous = self._registry.current.rows if self._registry.current.source == "synced" else ()
        rows = merge(fetched, previous, failed)
        changed = await self._db.run(store.replace_rows, rows)
        if changed:
            await self._registry.reload()
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "model sync models=%d plans=%s changed=%s",
            len(rows),
            ",".join(sorted(fetched)),
            changed,
        )

    async def _fetch_plan(self, accounts: list[AccountRecord]) -> list[dict] | None:
        for account in accounts:
            models = await self._fetch(account)
            if models is not None:
                return models
        return None

    async def _fetch(self, account: AccountRecord) -> list[dict] | None:
        token = account.access_token
        for attempt in range(2):
            request_headers = headers.for_json(
                token,
                account.chatgpt_account_id,
                {"user-agent": headers.DEFAULT_USER_AGENT, "originator": headers.DEFAULT_ORIGINATOR},
            )
            try:
                via = self._upstream.session_for(account.id)  # the account's egress route
                status, _, raw = await self._upstream.get_json(self.url, request_headers, via)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("model sync request failed account=%d error=%s", account.id, type(exc).__name__)
                return None
            if status == 401 and attempt == 0:
                try:
                    token = await self._refresher.refresh(account.id, token)
                except RefreshFailed:
                    return None
                self._roster.update_access_token(account.id, token)
                continue
            if status != 200:
                log.warning("model sync rejected account=%d status=%d", account.id, status)
                return None
            return _models_of(raw)
        return None


def _models_of(raw: bytes) -> list[dict] | None:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    models = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(models, list):
        return None
    return [m for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str) and m["slug"]]


def merge(fetched: dict[str, list[dict]], previous: Iterable[ModelRow], failed: set[str]) -> list[ModelRow]:
    """One row per slug: the entry as the first plan listed it, the plans that listed (or declare) it.

    Plans whose fetch failed this time keep the models they had, so one bad account does not hide them.
    """
    entries: dict[str, dict] = {}
    plans: dict[str, set[str]] = {}
    for plan in sorted(fetched):
        for entry in fetched[plan]:
            slug = entry["slug"]
            entries.setdefault(slug, entry)
            plans.setdefault(slug, set()).add(plan)
    for row in previous:
        carried = failed.intersection(row.plans)
        if carried:
            entries.setdefault(row.slug, row.entry)
            plans.setdefault(row.slug, set()).update(carried)
    for slug, entry in entries.items():
        declared = entry.get("available_in_plans")
        if isinstance(declared, list):
            plans[slug].update(p for p in declared if isinstance(p, str))
    order = sorted(entries, key=lambda s: (_priority(entries[s]), s))
    return [ModelRow(slug, entries[slug], tuple(sorted(plans[slug]))) for slug in order]


def _priority(entry: dict) -> int:
    value = entry.get("priority")
    return value if isinstance(value, int) else 1_000_000
