"""The accounts one client may be routed to now: the roster narrowed to an API key's accounts and to those
with an egress route. Owns the per-worker cache that hands out the same tuple for the same inputs.

The balancer keeps its array table for a tuple it has seen (by identity), so a request that narrowed the
roster into a fresh list rebuilt that O(accounts) table each time; a view is worked out again only when
the roster, the key's account set or the set of accounts without a route changes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass

from server.accounts.roster import Roster
from server.balancer.candidates import Candidate
from server.egress.routes import EgressRoutes

MAX_VIEWS = 256  # distinct account sets remembered per worker (keys, times egress states)


@dataclass(frozen=True, slots=True)
class _View:
    roster: tuple[Candidate, ...]  # what it was narrowed from, by identity
    allowed: Collection[int] | None
    unavailable: frozenset[int]
    candidates: tuple[Candidate, ...]


class PoolViews:
    def __init__(self, roster: Roster, egress: EgressRoutes) -> None:
        self._roster = roster
        self._egress = egress
        # id(allowed) -> view; the view holds `allowed`, so the id cannot be reused while it is here
        self._views: OrderedDict[int, _View] = OrderedDict()
        # (account set, unavailable) -> candidates for the current roster: keys restricted to the same
        # accounts share one tuple (and so one balancer table)
        self._shared: dict[tuple[frozenset[int] | None, frozenset[int]], tuple[Candidate, ...]] = {}
        self._shared_roster: tuple[Candidate, ...] = ()

    def routable(self, allowed: Collection[int] | None, now: float) -> tuple[Candidate, ...]:
        """The roster's candidates among `allowed` (None: every account; an immutable collection, such
        as a key's frozenset) that have an egress route at `now`; the roster's own tuple when that is
        all of them. May be empty."""
        roster = self._roster.candidates
        unavailable = self._egress.unavailable_accounts(now)
        if allowed is None and not unavailable:
            return roster
        view = self._views.get(id(allowed))
        if view is None or view.roster is not roster or view.unavailable is not unavailable:
            view = _View(roster, allowed, unavailable, self._narrow(roster, allowed, unavailable))
            self._views[id(allowed)] = view
            if len(self._views) > MAX_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(id(allowed))
        return view.candidates

    def _narrow(
        self, roster: tuple[Candidate, ...], allowed: Collection[int] | None, unavailable: frozenset[int]
    ) -> tuple[Candidate, ...]:
        if self._shared_roster is not roster:
            self._shared, self._shared_roster = {}, roster
        content = (None if allowed is None else frozenset(allowed), unavailable)
        shared = self._shared.get(content)
        if shared is None:
            shared = tuple(
                c
                for c in roster
                if (allowed is None or c.account_id in allowed) and c.account_id not in unavailable
            )
            if len(shared) == len(roster):
                shared = roster
            if len(self._shared) >= MAX_VIEWS:
                self._shared.clear()
            self._shared[content] = shared
        return shared
