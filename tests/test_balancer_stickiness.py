"""Sessions stick to one account by rendezvous hashing (session_placement "rendezvous"): the same on every
worker, moved only when needed. Headroom placement (the default) is in test_balancer_placement.py."""

from __future__ import annotations

from collections import Counter

import pytest

from server.balancer.candidates import Candidate
from server.balancer.selection import RENDEZVOUS_PLACEMENT, Balancer
from server.balancer.slots import AccountSlots, Field, SharedPrimitives
from server.balancer.stickiness import account_salt, rendezvous_weight, session_digest

NOW = 1_750_000_000.0
SESSIONS = [f"session-{n}" for n in range(1000)]


@pytest.fixture
def slots() -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=16))


def pool(count: int) -> list[Candidate]:
    return [
        Candidate(account_id=100 + slot, slot=slot, status="active", plan_type="plus")
        for slot in range(count)
    ]


def rendezvous(slots: AccountSlots, strategy: str, cap: int) -> Balancer:
    balancer = Balancer(slots, strategy, cap)
    balancer.configure(strategy, True, placement=RENDEZVOUS_PLACEMENT)
    return balancer


def sticky(balancer: Balancer, candidates, session: str, **kwargs):
    return balancer.select(candidates, session_key=session, now=kwargs.pop("now", NOW), **kwargs)


def winner(candidates, session: str) -> Candidate:
    digest = session_digest(session)
    return max(candidates, key=lambda c: rendezvous_weight(digest, account_salt(c.account_id)))


def test_digests_are_stable_across_processes_and_releases():
    # Replicas must agree: these values may never change (a change reshuffles every session).
    assert session_digest("abc") == 0x5995D533D814BBD8
    assert account_salt(1) == 0x19D7A246F950F93A
    assert rendezvous_weight(session_digest("abc"), account_salt(1)) == 0xD9C0510B3F2E9B16


def test_a_session_sticks_to_one_account_on_every_worker(slots):
    accounts = pool(5)
    first, second = rendezvous(slots, "usage_weighted", 4), rendezvous(slots, "round_robin", 4)
    for session in SESSIONS[:50]:
        chosen = {sticky(worker, accounts, session).candidate for worker in (first, second, first)}
        assert chosen == {winner(accounts, session)}
        assert sticky(first, accounts, session).routing == "sticky"


def test_the_roster_order_does_not_matter(slots):
    accounts = pool(6)
    balancer = rendezvous(slots, "usage_weighted", 4)
    for session in SESSIONS[:50]:
        forward = sticky(balancer, accounts, session).candidate
        assert sticky(balancer, list(reversed(accounts)), session).candidate == forward


def test_sessions_spread_over_the_accounts(slots):
    accounts = pool(5)
    balancer = rendezvous(slots, "usage_weighted", 4)
    counts = Counter(sticky(balancer, accounts, session).candidate.slot for session in SESSIONS)
    assert set(counts) == set(range(5))
    assert min(counts.values()) > 150  # 200 each on average


def test_adding_an_account_moves_only_the_sessions_it_takes(slots):
    balancer = rendezvous(slots, "usage_weighted", 4)
    before = {s: sticky(balancer, pool(10), s).candidate.slot for s in SESSIONS}
    after = {s: sticky(balancer, pool(11), s).candidate.slot for s in SESSIONS}
    moved = [s for s in SESSIONS if before[s] != after[s]]
    assert all(after[s] == 10 for s in moved)
    assert 0.05 < len(moved) / len(SESSIONS) < 0.15  # about 1/11


def test_removing_an_account_moves_only_its_own_sessions(slots):
    balancer = rendezvous(slots, "usage_weighted", 4)
    before = {s: sticky(balancer, pool(8), s).candidate.slot for s in SESSIONS}
    remaining = [c for c in pool(8) if c.slot != 3]
    after = {s: sticky(balancer, remaining, s).candidate.slot for s in SESSIONS}
    assert [s for s in SESSIONS if before[s] != after[s]] == [s for s in SESSIONS if before[s] == 3]


def test_a_cooling_winner_moves_the_session_and_it_comes_back(slots):
    accounts = pool(4)
    session = SESSIONS[0]
    home = winner(accounts, session)
    slots.set(home.slot, Field.COOLDOWN_UNTIL, NOW + 10)
    workers = [rendezvous(slots, "usage_weighted", 4) for _ in range(2)]
    moved = [sticky(worker, accounts, session) for worker in workers]
    assert {m.routing for m in moved} == {"sticky_moved:cooldown"}
    # both workers move it to the same place: the session's second choice
    second_choice = winner([c for c in accounts if c != home], session)
    assert {m.candidate for m in moved} == {second_choice}
    back = sticky(workers[0], accounts, session, now=NOW + 11)
    assert (back.candidate, back.routing) == (home, "sticky")


def test_a_winner_at_capacity_moves_the_session(slots):
    accounts = pool(4)
    session = SESSIONS[1]
    home = winner(accounts, session)
    slots.set(home.slot, Field.INFLIGHT, 2)
    selection = sticky(rendezvous(slots, "usage_weighted", 2), accounts, session)
    assert selection.routing == "sticky_moved:at_capacity"
    assert selection.candidate == winner([c for c in accounts if c != home], session)
    assert not selection.over_cap


def test_when_every_account_is_at_capacity_the_session_stays_home_over_cap(slots):
    accounts = pool(3)
    session = SESSIONS[2]
    for account in accounts:
        slots.set(account.slot, Field.INFLIGHT, 2)
    selection = sticky(rendezvous(slots, "usage_weighted", 2), accounts, session)
    assert (selection.candidate, selection.routing, selection.over_cap) == (
        winner(accounts, session),
        "sticky",
        True,
    )


def test_failover_moves_an_excluded_winner(slots):
    accounts = pool(4)
    session = SESSIONS[3]
    home = winner(accounts, session)
    selection = sticky(rendezvous(slots, "usage_weighted", 4), accounts, session, exclude={home.account_id})
    assert selection.routing == "sticky_moved:excluded"
    assert selection.candidate != home


def test_a_spent_winner_moves_the_session(slots):
    accounts = pool(4)
    session = SESSIONS[4]
    home = winner(accounts, session)
    slots.set(home.slot, Field.PRIMARY_USED, 100.0)
    slots.set(home.slot, Field.PRIMARY_RESET_AT, NOW + 600)
    assert (
        sticky(rendezvous(slots, "usage_weighted", 4), accounts, session).routing == "sticky_moved:exhausted"
    )


def test_a_roster_rate_limit_moves_the_session(slots):
    session = SESSIONS[5]
    home = winner(pool(4), session)
    accounts = [
        Candidate(c.account_id, c.slot, "rate_limited", c.plan_type, NOW + 30) if c == home else c
        for c in pool(4)
    ]
    assert (
        sticky(rendezvous(slots, "usage_weighted", 4), accounts, session).routing == "sticky_moved:cooldown"
    )


def test_a_paused_account_is_not_part_of_the_session_ranking(slots):
    # Paused, re-auth and deactivated accounts wait for a person: sessions settle on the others for good.
    session = SESSIONS[6]
    home = winner(pool(4), session)
    accounts = [Candidate(c.account_id, c.slot, "paused", c.plan_type) if c == home else c for c in pool(4)]
    selection = sticky(rendezvous(slots, "usage_weighted", 4), accounts, session)
    assert selection.routing == "sticky"
    assert selection.candidate != home


def test_a_cooling_account_that_ranks_below_the_choice_is_no_reason_to_report(slots):
    accounts = pool(4)
    session = SESSIONS[7]
    ranking = sorted(
        accounts,
        key=lambda c: rendezvous_weight(session_digest(session), account_salt(c.account_id)),
        reverse=True,
    )
    slots.set(ranking[-1].slot, Field.COOLDOWN_UNTIL, NOW + 10)
    selection = sticky(rendezvous(slots, "usage_weighted", 4), accounts, session)
    assert (selection.candidate, selection.routing) == (ranking[0], "sticky")
