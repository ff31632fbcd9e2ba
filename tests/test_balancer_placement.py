"""Routing policies, the earlier-reset preference and headroom-aware session placement, on the real
balancer over shared slots (pure: the time is a parameter). Small pools and 500-account pools alike."""

from __future__ import annotations

import pytest

from server.balancer.candidates import Candidate
from server.balancer.placement import SPARE_TTL_S
from server.balancer.rates import REFRESH_S
from server.balancer.selection import RENDEZVOUS_PLACEMENT, Balancer
from server.balancer.sessions import SessionBook
from server.balancer.shortage import NoAccountAvailable
from server.balancer.slots import AccountSlots, Field, SharedPrimitives

NOW = 1_750_000_000.0


def account(slot: int, policy: str = "normal", reserve: float = 0.0) -> Candidate:
    return Candidate(100 + slot, slot, "active", "plus", policy=policy, reserve_percent=reserve)


def use(
    slots: AccountSlots, slot: int, primary: float, reset_in: float = 3600.0, secondary: float = 0.0
) -> None:
    slots.set(slot, Field.PRIMARY_USED, primary)
    slots.set(slot, Field.PRIMARY_RESET_AT, NOW + reset_in)
    slots.set(slot, Field.SECONDARY_USED, secondary)
    slots.set(slot, Field.SECONDARY_RESET_AT, NOW + 5 * 86400)


@pytest.fixture(params=[3, 500], ids=["3 accounts", "500 accounts"])
def size(request) -> int:
    return request.param


@pytest.fixture
def slots(size) -> AccountSlots:
    return AccountSlots(SharedPrimitives.create(capacity=size))


def roster(size: int, **policies) -> tuple[Candidate, ...]:
    """Accounts 100.. on slots 0..; `policies` maps a slot (as s<N>) to (policy, reserve)."""
    chosen = {int(name[1:]): value for name, value in policies.items()}
    return tuple(account(slot, *chosen.get(slot, ("normal",))) for slot in range(size))


def spread(slots: AccountSlots, size: int, used: float = 50.0) -> None:
    for slot in range(size):
        use(slots, slot, used)


def pick(balancer: Balancer, candidates, session: str | None = None, now: float = NOW, **kwargs):
    selection = balancer.select(candidates, session_key=session, now=now, **kwargs)
    return selection.candidate.slot, selection.routing


def test_burn_first_is_spent_before_the_others(slots, size):
    spread(slots, size)
    use(slots, 2, 90)  # the least headroom: usage_weighted alone would never pick it
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size, s2=("burn_first",))
    assert pick(balancer, candidates) == (2, "burn_first")
    slots.set(2, Field.INFLIGHT, 4)  # at its cap: the overflow goes to the others
    assert pick(balancer, candidates)[1] == "usage_weighted"
    slots.set(2, Field.INFLIGHT, 0)
    use(slots, 2, 100)  # spent: back to the strategy
    assert pick(balancer, candidates) != (2, "burn_first")


def test_preserve_keeps_its_floor_for_when_nothing_else_can_serve(slots, size):
    spread(slots, size, used=60)
    use(slots, 1, 10)  # the most headroom, above its 20 % floor: served like a normal account
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size, s1=("preserve", 20.0))
    assert pick(balancer, candidates) == (1, "usage_weighted")
    use(slots, 1, 85)  # 15 % left, under the floor: held back
    assert pick(balancer, candidates)[0] != 1
    for slot in range(size):
        if slot != 1:
            use(slots, slot, 100)
    assert pick(balancer, candidates) == (1, "preserve_floor")
    assert pick(balancer, candidates, session="new conversation") == (1, "preserve_floor")


def test_a_standby_account_serves_only_when_the_rest_cannot(slots, size):
    spread(slots, size, used=0)
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size, s0=("preserve", 100.0))
    assert all(pick(balancer, candidates, session=f"s{n}")[0] != 0 for n in range(20))
    with pytest.raises(NoAccountAvailable):
        balancer.select(candidates[:1], session_key=None, now=NOW, exclude={100})
    assert pick(balancer, candidates, exclude={c.account_id for c in candidates[1:]}) == (0, "preserve_floor")


@pytest.mark.parametrize(("setting", "window"), [("5h", "primary"), ("weekly", "secondary")])
def test_the_earlier_reset_is_spent_first(slots, size, setting, window):
    spread(slots, size, used=40)
    for slot in range(size):  # resets an hour apart; slot 1 resets first
        reset_at = NOW + 3600 * (2 + (slot if slot != 1 else -1))
        slots.set(slot, Field.PRIMARY_RESET_AT if window == "primary" else Field.SECONDARY_RESET_AT, reset_at)
    use(slots, 1, 70) if window == "primary" else slots.set(1, Field.SECONDARY_USED, 70)
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size)
    assert pick(balancer, candidates)[1] == "usage_weighted"  # off by default
    balancer.configure("usage_weighted", True, prefer_earlier_reset=setting)
    assert pick(balancer, candidates) == (1, "earlier_reset")
    assert pick(balancer, candidates, session="a new conversation") == (1, "earlier_reset")


def test_burn_first_outranks_the_earlier_reset(slots, size):
    spread(slots, size)
    use(slots, 0, 50, reset_in=60)
    balancer = Balancer(slots, "round_robin", 4)
    balancer.configure("round_robin", True, prefer_earlier_reset="5h")
    assert pick(balancer, roster(size, s2=("burn_first",))) == (2, "burn_first")


def test_a_new_conversation_avoids_an_account_about_to_run_out(slots, size):
    spread(slots, size, used=30)
    use(slots, 0, 97)  # 3 % left: not enough for a long conversation at ~1 % a turn
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size)
    placed = [pick(balancer, candidates, session=f"conversation-{n}") for n in range(12)]
    assert all(slot != 0 and routing == "headroom" for slot, routing in placed)
    assert len(balancer.sessions) == 12
    # The next turns stay where they were placed.
    again = [pick(balancer, candidates, session=f"conversation-{n}") for n in range(12)]
    assert [slot for slot, _ in again] == [slot for slot, _ in placed]
    assert {routing for _, routing in again} == {"sticky"}


def test_a_session_stays_on_its_account_as_it_fills_and_moves_once_when_spent(slots, size):
    spread(slots, size, used=10)
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size)
    home, routing = pick(balancer, candidates, session="long one")
    assert routing == "headroom"
    use(slots, home, 99)  # nearly spent: no new conversation goes here (once measured), this one stays
    later = NOW + SPARE_TTL_S
    assert pick(balancer, candidates, session="long one", now=later) == (home, "sticky")
    assert pick(balancer, candidates, session="another", now=later)[0] != home
    use(slots, home, 100)
    moved, routing = pick(balancer, candidates, session="long one")
    assert moved != home and routing == "sticky_moved:exhausted"
    use(slots, home, 0)  # its window reset: the session does not go back (that would be a second move)
    assert pick(balancer, candidates, session="long one") == (moved, "sticky")


def test_a_session_at_a_full_account_runs_this_turn_elsewhere_and_keeps_its_home(slots, size):
    spread(slots, size, used=10)
    balancer = Balancer(slots, "usage_weighted", 2)
    candidates = roster(size)
    home, _ = pick(balancer, candidates, session="busy")
    slots.set(home, Field.INFLIGHT, 2)
    other, routing = pick(balancer, candidates, session="busy")
    assert other != home and routing == "sticky_moved:at_capacity"
    for slot in range(size):
        slots.set(slot, Field.INFLIGHT, 2)
    selection = balancer.select(candidates, session_key="busy", now=NOW)
    assert (selection.candidate.slot, selection.over_cap) == (home, True)
    slots.set(home, Field.INFLIGHT, 0)
    assert pick(balancer, candidates, session="busy") == (home, "sticky")


def test_placement_learns_what_a_turn_costs_on_each_account(slots, size):
    spread(slots, size, used=20)
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size)
    pick(balancer, candidates, session="warm-up", now=NOW)  # the first marks
    slots.set(1, Field.REQUESTS, 10)
    use(slots, 1, 80)  # 10 requests took 60 %: 6 % a turn, so 80 % used leaves room for ~3 turns
    for slot in range(size):
        if slot != 1:
            slots.set(slot, Field.REQUESTS, 10)
            use(slots, slot, 25)  # 0.5 % a turn
    later = NOW + REFRESH_S
    placed = {pick(balancer, candidates, session=f"c{n}", now=later)[0] for n in range(30)}
    assert 1 not in placed


def test_rendezvous_placement_moves_a_session_off_a_held_back_account(slots, size):
    spread(slots, size, used=90)  # under every preserve floor of 20 %
    balancer = Balancer(slots, "usage_weighted", 4)
    balancer.configure("usage_weighted", True, placement=RENDEZVOUS_PLACEMENT)
    everyone_preserves = tuple(account(slot, "preserve", 20.0) for slot in range(size))
    home = pick(balancer, everyone_preserves, session="s")[0]
    candidates = tuple(account(s) if s != home else account(s, "preserve", 20.0) for s in range(size))
    moved, routing = pick(balancer, candidates, session="s")
    assert moved != home and routing == "sticky_moved:preserve_floor"


def test_the_session_book_is_bounded_and_learns_how_long_conversations_run():
    book = SessionBook(slot_capacity=4, max_sessions=100, idle_s=60.0)
    for n in range(150):
        book.place(n, 7, n % 4, NOW)
    assert len(book) <= 100 + 32  # trimmed a batch at a time
    book.expire(NOW)
    assert len(book) <= 100
    for turn in range(30):
        book.turn(999, book.get(999, NOW) or _placed(book, 999), NOW + turn)
    before = book.mean_turns
    assert before == 8.0  # those pushed out for room taught nothing: they may not have ended
    while len(book):
        book.expire(NOW + 10_000)  # every session idle: ended
    assert book.mean_turns < before  # most ran one turn
    assert book.live.sum() == 0 and book.turns.sum() == 0


def _placed(book: SessionBook, digest: int) -> list:
    book.place(digest, 1, 0, NOW)
    return book.get(digest, NOW)


def test_a_key_limited_to_some_accounts_keeps_its_sessions_among_them(slots, size):
    spread(slots, size, used=10)
    balancer = Balancer(slots, "usage_weighted", 4)
    candidates = roster(size)
    home, _ = pick(balancer, candidates, session="shared")
    allowed = [c for c in candidates if c.slot != home][:2]  # as the proxy narrows a key's accounts
    moved, routing = pick(balancer, allowed, session="shared")
    assert moved != home and routing == "sticky_moved:unavailable"
    assert pick(balancer, allowed, session="shared") == (moved, "sticky")
