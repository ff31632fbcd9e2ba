"""A client's view of the pool (the roster narrowed to a key's accounts and to those with an egress
route) is one tuple per roster, account set and egress state: the balancer builds its table once for it."""

from __future__ import annotations

import time
from types import SimpleNamespace

from server.balancer.candidates import ACTIVE, Candidate
from server.egress.routes import DOWN_FOR_S, EgressRoutes
from server.egress.store import Binding, ProxyRecord
from server.proxy.pool_views import PoolViews

NOW = 1_000_000.0


def roster_of(count: int) -> SimpleNamespace:
    candidates = tuple(
        Candidate(account_id=i, slot=i - 1, status=ACTIVE, plan_type="plus") for i in range(1, count + 1)
    )
    return SimpleNamespace(candidates=candidates)


def proxy(proxy_id: int, pool: str = "", ok: bool = True) -> ProxyRecord:
    return ProxyRecord(
        proxy_id, f"p{proxy_id}", f"socks5://10.0.0.{proxy_id}:1080", "", "", pool, 1, ok, "", 0.0, "", 0.0
    )


def ids(candidates) -> list[int]:
    return [c.account_id for c in candidates]


def test_the_same_inputs_give_the_same_tuple_and_keys_with_one_account_set_share_it():
    roster, egress = roster_of(5), EgressRoutes()
    views = PoolViews(roster, egress)
    assert views.routable(None, NOW) is roster.candidates
    key = frozenset({2, 3})
    first = views.routable(key, NOW)
    assert ids(first) == [2, 3] and views.routable(key, NOW + 1) is first
    assert views.routable(frozenset({3, 2}), NOW) is first  # another key, the same accounts
    assert views.routable(frozenset(range(1, 9)), NOW) is roster.candidates  # covers the whole pool


def test_a_roster_change_is_a_new_view_at_once():
    roster, egress = roster_of(3), EgressRoutes()
    views = PoolViews(roster, egress)
    key = frozenset({1, 2})
    before = views.routable(key, NOW)
    roster.candidates = roster.candidates[1:]  # account 1 left (or was paused: a new tuple either way)
    after = views.routable(key, NOW)
    assert ids(before) == [1, 2] and ids(after) == [2]


def test_accounts_whose_proxy_is_down_are_left_out_until_it_is_back():
    roster, egress = roster_of(4), EgressRoutes()
    egress.install(
        [proxy(1), proxy(2, pool="eu"), proxy(3, pool="eu")], [Binding(1, 1, ""), Binding(2, None, "eu")]
    )
    views = PoolViews(roster, egress)
    assert views.routable(None, NOW) is roster.candidates
    now = time.time()
    egress.mark_down(1, "refused")  # for DOWN_FOR_S from now
    unavailable = egress.unavailable_accounts(now)
    assert unavailable == {1} and egress.unavailable_accounts(now + 0.5) is unavailable
    down = views.routable(None, now)
    assert ids(down) == [2, 3, 4] and views.routable(None, now + 0.5) is down
    egress.mark_down(2, "refused")  # one of the pool's two: account 2 still has a way out
    assert views.routable(None, now) is down
    assert views.routable(None, now + DOWN_FOR_S + 1) is roster.candidates  # both down times over
    egress.install(
        [proxy(1), proxy(2, pool="eu", ok=False), proxy(3, pool="eu", ok=False)], [Binding(2, None, "eu")]
    )
    assert ids(views.routable(frozenset({2, 3}), now + DOWN_FOR_S + 1)) == [
        3
    ]  # the last check failed for the whole pool
