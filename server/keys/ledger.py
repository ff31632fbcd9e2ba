"""The shared limit counters: reserve at admission, settle at the end, expire what dead workers held.

Correctness across workers and replicas rests on one statement per rule: an upsert of the rule's
counter row whose update only happens `WHERE used + reserved + amount <= max`. PostgreSQL locks the
row for it and SQLite has one writer, so two requests can never both take the last of a budget. All
rules of a request are reserved in one transaction (in rule-id order, so concurrent transactions
cannot deadlock); if any rule is full the transaction rolls back and nothing is held.

Each reservation is a row naming its holder (one id per worker process) with an expiry the holder
renews every RENEW_S; when a worker dies, its reservations expire within RESERVATION_TTL_S and the
sweeper hands the amounts back to their counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace

from pony import orm

from server.db import Database

log = logging.getLogger(__name__)

RESERVATION_TTL_S = 60.0
RENEW_S = 20.0
SWEEP_INTERVAL_S = 10.0
COUNTER_RETENTION_S = 40 * 86400  # keep closed windows a little longer than the longest window
SETTLE_ATTEMPTS = 5

# A request holds its estimate, capped at what the rule has left (a small budget still serves requests
# whose estimate exceeds it; what one then uses beyond its hold is the documented overshoot). A partial
# hold is granted only while nothing else is reserved: otherwise the room that running requests hand
# back when they use less than their estimate would let several partial holds overrun together, and the
# overshoot would exceed one request's use. The row is locked for the statement, so `last_grant`
# returns this reservation's own amount.
_ROOM = "$cap - api_key_counter.used - api_key_counter.reserved"
_GRANT = f"CASE WHEN {_ROOM} < $amount THEN {_ROOM} ELSE $amount END"
_RESERVE = f"""
INSERT INTO api_key_counter (limit_id, window_start, window_end, used, reserved, last_grant)
SELECT $limit_id, $start, $end, 0, CASE WHEN $amount < $cap THEN $amount ELSE $cap END,
       CASE WHEN $amount < $cap THEN $amount ELSE $cap END
WHERE $cap > 0
ON CONFLICT (limit_id, window_start) DO UPDATE SET reserved = api_key_counter.reserved + {_GRANT},
    last_grant = {_GRANT}
WHERE api_key_counter.used + api_key_counter.reserved < $cap
  AND (api_key_counter.reserved <= 0 OR {_ROOM} >= $amount)
RETURNING last_grant
"""
_HOLD = """
INSERT INTO api_key_reservation (request_id, limit_id, window_start, amount, holder, expires_at)
VALUES ($request_id, $limit_id, $start, $amount, $holder, $expires_at)
"""
_RELEASE = """
UPDATE api_key_counter SET used = used + $actual,
    reserved = CASE WHEN reserved - $released < 0 THEN 0 ELSE reserved - $released END
WHERE limit_id = $limit_id AND window_start = $start
"""


@dataclass(frozen=True, slots=True)
class Hold:
    """What one request reserves against one rule's current window."""

    limit_id: int
    window_start: int
    window_end: int
    amount: float
    cap: float


class _Full(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


@orm.db_session
def _reserve(db: orm.Database, request_id: str, holder: str, holds: list[Hold], now: float) -> list[Hold]:
    expires_at = now + RESERVATION_TTL_S
    granted = []
    for index, hold in enumerate(holds):
        params = {
            "limit_id": hold.limit_id,
            "start": hold.window_start,
            "end": hold.window_end,
            "amount": hold.amount,
            "cap": hold.cap,
        }
        row = db.execute(_RESERVE, {}, params).fetchone()
        if row is None:
            raise _Full(index)  # rolls back the rules already reserved in this transaction
        params["amount"] = float(row[0])
        granted.append(replace(hold, amount=params["amount"]))
        db.execute(
            _HOLD,
            {},
            {**params, "request_id": request_id, "holder": holder, "expires_at": expires_at},
        )
    return granted


@dataclass(frozen=True, slots=True)
class Refusal:
    """The rule that had no room: `index` in the holds, and its counter when it refused."""

    index: int
    used: float
    reserved: float


def reserve(
    db: orm.Database, request_id: str, holder: str, holds: list[Hold], now: float
) -> list[Hold] | Refusal:
    """Reserve every hold or none: the holds as granted (each capped at what its rule had left), or the
    Refusal of a rule with nothing left."""
    try:
        return _reserve(db, request_id, holder, holds, now)
    except _Full as full:
        hold = holds[full.index]
        return Refusal(full.index, *_counter(db, hold.limit_id, hold.window_start))


@orm.db_session
def _counter(db: orm.Database, limit_id: int, window_start: int) -> tuple[float, float]:
    rows = db.select(
        "SELECT used, reserved FROM api_key_counter WHERE limit_id = $limit_id AND window_start = $start",
        {},
        {"limit_id": limit_id, "start": window_start},
    )
    return (float(rows[0][0]), float(rows[0][1])) if rows else (0.0, 0.0)


@orm.db_session(retry=3)
def settle(db: orm.Database, request_id: str, holds: list[Hold], actuals: list[float]) -> None:
    """Count the real usage and hand back the reservation. A reservation the sweeper already expired is
    not handed back twice (its row is gone), but the usage is still counted."""
    for hold, actual in zip(holds, actuals, strict=True):
        deleted = db.execute(
            "DELETE FROM api_key_reservation WHERE request_id = $request_id AND limit_id = $limit_id",
            {},
            {"request_id": request_id, "limit_id": hold.limit_id},
        ).rowcount
        db.execute(
            _RELEASE,
            {},
            {
                "actual": actual,
                "released": hold.amount if deleted else 0.0,
                "limit_id": hold.limit_id,
                "start": hold.window_start,
            },
        )


@orm.db_session
def renew(db: orm.Database, holder: str, now: float) -> int:
    return db.execute(
        "UPDATE api_key_reservation SET expires_at = $expires_at WHERE holder = $holder",
        {},
        {"expires_at": now + RESERVATION_TTL_S, "holder": holder},
    ).rowcount


@orm.db_session
def expire(db: orm.Database, now: float) -> int:
    """Hand back reservations whose holder stopped renewing them; drop long-closed windows."""
    rows = db.select(
        "SELECT id, limit_id, window_start, amount FROM api_key_reservation "
        "WHERE expires_at < $now LIMIT 1000",
        {},
        {"now": now},
    )
    expired = 0
    for reservation_id, limit_id, window_start, amount in rows:
        gone = db.execute(
            "DELETE FROM api_key_reservation WHERE id = $id AND expires_at < $now",
            {},
            {"id": reservation_id, "now": now},
        ).rowcount
        if gone:
            expired += 1
            db.execute(
                _RELEASE, {}, {"actual": 0.0, "released": amount, "limit_id": limit_id, "start": window_start}
            )
    db.execute(
        "DELETE FROM api_key_counter WHERE window_end < $before AND reserved <= 0",
        {},
        {"before": now - COUNTER_RETENTION_S},
    )
    return expired


class KeyLedger:
    """One worker's side of the ledger: reserves (awaited), settles in the background, renews its holds."""

    def __init__(self, db: Database, holder: str) -> None:
        self._db = db
        self.holder = holder
        self._live = 0  # requests holding reservations right now
        self._settling: set[asyncio.Task] = set()
        self._renewer: asyncio.Task | None = None

    def start(self) -> None:
        self._renewer = asyncio.create_task(self._renew_loop(), name="key-reservation-renewer")

    async def close(self) -> None:
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=30)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)

    async def reserve(self, request_id: str, holds: list[Hold]) -> list[Hold] | Refusal:
        write = asyncio.ensure_future(self._db.run(reserve, request_id, self.holder, holds, time.time()))
        try:
            answer = await asyncio.shield(write)
        except asyncio.CancelledError:
            # The client went away while the database worked: whatever was reserved goes straight back.
            write.add_done_callback(lambda done: self._abandoned(done, request_id))
            raise
        if not isinstance(answer, Refusal):
            self._live += 1
        return answer

    def _abandoned(self, done: asyncio.Future, request_id: str) -> None:
        if not done.cancelled() and done.exception() is None and not isinstance(done.result(), Refusal):
            self._live += 1
            granted = done.result()
            self.settle(request_id, granted, [0.0] * len(granted))

    def settle(self, request_id: str, holds: list[Hold], actuals: list[float]) -> None:
        """Called when the request ends (from sync code): the database write happens in the background."""
        task = asyncio.get_running_loop().create_task(
            self._settle(request_id, holds, actuals), name="key-settle"
        )
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, request_id: str, holds: list[Hold], actuals: list[float]) -> None:
        delay = 0.2
        try:
            for attempt in range(SETTLE_ATTEMPTS):
                try:
                    await self._db.run(settle, request_id, holds, actuals)
                    return
                except Exception as exc:  # a database hiccup: the reservation keeps the budget meanwhile
                    if attempt == SETTLE_ATTEMPTS - 1:
                        log.error("key usage not settled request_id=%s error=%s", request_id, exc)
                        return
                    await asyncio.sleep(delay)
                    delay *= 2
        finally:
            self._live -= 1

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            if self._live <= 0 and not self._settling:
                continue  # nothing held: no database work for workers without limited traffic
            try:
                await self._db.run(renew, self.holder, time.time())
            except Exception:  # the next round retries; reservations live RESERVATION_TTL_S meanwhile
                log.exception("could not renew key reservations holder=%s", self.holder)


async def sweep(db: Database) -> None:
    """The periodic job (one worker of one replica at a time): expire abandoned reservations."""
    expired = await db.run(expire, time.time())
    if expired:
        log.warning("expired abandoned key reservations count=%d", expired)
