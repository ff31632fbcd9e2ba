"""Synthetic request history: a month of realistic request-log rows, written with bulk inserts and then
rolled up, for `scripts/demo --history`, the dashboard benchmark and tests.

Conversations stick to one account and sometimes move (cooldown, exhausted, at capacity), traffic
follows a working day, tokens and latencies are log-normal, and a few percent of requests fail.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass

from pony import orm
from psycopg2.extras import execute_values

from server.usage import key_totals, last_use, rollups
from server.usage.pricing import BUILTIN_PRICES, PriceBook
from server.usage.tokens import TokenUsage
from server.usage.writer import COLUMNS

MODELS = (
    ("gpt-5.4", 40),
    ("gpt-5.3-codex", 30),
    ("gpt-5.4-mini", 15),
    ("gpt-5.5", 10),
    ("gpt-5.1-codex-mini", 5),
)
ROUTES = (
    ("/backend-api/codex/responses", "http", 45),
    ("/backend-api/codex/responses", "websocket", 25),
    ("/v1/responses", "http", 18),
    ("/v1/chat/completions", "http", 12),
)
FAILURES = (  # (status, error_code, per-mille)
    (429, "usage_limit_reached", 12),
    (502, "upstream_error", 8),
    (499, "client_disconnected", 6),
    (503, "no_accounts", 3),
    (400, "invalid_request", 4),
    (502, "stream_incomplete", 2),
)
MOVE_REASONS = (("cooldown", 5), ("exhausted", 3), ("at_capacity", 2))
EFFORTS = ("low", "medium", "medium", "high")
USER_AGENTS = {
    "/backend-api/codex/responses": "codex_cli_rs/0.121.0 (Ubuntu 24.4.0; x86_64) xterm-256color",
    "/v1/responses": "OpenAI/Python 2.8.1",
    "/v1/chat/completions": "opencode/1.0.150 ai-sdk/provider-utils/3.0.17",
}
BATCH = 5000
_KEY_FIELDS = tuple(COLUMNS.index(name) for name in key_totals.FIELDS)
_ACCOUNT, _STARTED = COLUMNS.index("account_id"), COLUMNS.index("started_at")


@dataclass(frozen=True, slots=True)
class HistorySpec:
    rows: int = 1_000_000
    days: float = 30.0
    account_ids: tuple[int, ...] = (1, 2, 3)
    api_key_ids: tuple[int, ...] = ()
    seed: int = 16
    now: float | None = None


def _pick(rng: random.Random, weighted):
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0]


def _busy(rng: random.Random, at: float) -> bool:
    """Working hours are busier: about 5x more traffic at 14:00 than at 03:00 (UTC, for simplicity)."""
    hour = (at % 86400) / 3600
    weekday = int(at // 86400 + 3) % 7 < 5
    level = 0.2 + 0.8 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.2
    return rng.random() < level * (1.0 if weekday else 0.5)


def rows(spec: HistorySpec):
    """Yield request_log tuples in COLUMNS order, oldest conversations first."""
    rng = random.Random(spec.seed)
    now = time.time() if spec.now is None else spec.now
    start = now - spec.days * 86400
    prices = PriceBook(BUILTIN_PRICES)
    accounts = spec.account_ids or (None,)
    keys = (*spec.api_key_ids, None) if spec.api_key_ids else (None,)
    made = 0
    serial = 0
    while made < spec.rows:
        at = rng.uniform(start, now)
        if not _busy(rng, at):
            continue
        serial += 1
        turns = min(spec.rows - made, max(1, int(rng.expovariate(1 / 12))))
        conversational = rng.random() < 0.8
        session = (
            hashlib.blake2b(f"{spec.seed}:{serial}".encode(), digest_size=8).hexdigest()
            if conversational
            else ""
        )
        account = rng.choice(accounts)
        key = rng.choice(keys)
        model = _pick(rng, MODELS)[0]
        route, transport, _ = _pick(rng, ROUTES)
        effort = rng.choice(EFFORTS)
        context = rng.lognormvariate(math.log(6000), 0.8)
        for turn in range(turns):
            if at >= now:
                break
            # As the default routing logs them: a conversation's first turn is placed by headroom.
            routing = ("sticky" if turn else "headroom") if session else "usage_weighted"
            if session and turn and rng.random() < 0.03:
                account = rng.choice([a for a in accounts if a != account] or accounts)
                routing = "sticky_moved:" + _pick(rng, MOVE_REASONS)[0]
            yield _row(
                rng,
                at,
                route,
                transport,
                account,
                key,
                model,
                effort,
                session,
                routing,
                context,
                turn,
                prices,
                accounts,
            )
            made += 1
            context *= rng.uniform(1.03, 1.15)
            if context > 200_000:  # near the context window the client compacts the conversation
                context = rng.uniform(20_000, 40_000)
            at += rng.lognormvariate(math.log(45), 0.9)


def _row(
    rng, at, route, transport, account, key, model, effort, session, routing, context, turn, prices, accounts
) -> tuple:
    status, code = 200, ""
    roll = rng.random() * 1000
    for fail_status, fail_code, per_mille in FAILURES:
        if roll < per_mille:
            status, code = fail_status, fail_code
            break
        roll -= per_mille
    served = status in (200, 499) or code == "stream_incomplete"
    attempts = 1 + (rng.random() < 0.04) + (status == 429)
    if served:
        inp = int(context)
        cached = int(inp * rng.uniform(0.55, 0.95)) if turn else int(inp * rng.uniform(0, 0.3))
        out = max(1, int(rng.lognormvariate(math.log(450), 0.9)))
        reasoning = int(out * rng.uniform(0.1, 0.6)) if effort != "low" else 0
        if status == 499:
            out //= 3
        usage = TokenUsage(inp, cached, out, reasoning, inp + out)
        cost = prices.cost_usd(model, usage)
        ttft = rng.lognormvariate(math.log(900), 0.6)
        latency = ttft + out * rng.uniform(8, 25)
    else:
        usage, cost, ttft = TokenUsage(), None, None
        latency = rng.lognormvariate(math.log(350), 0.7)
    failovers = ""
    others = [a for a in accounts if a != account and a is not None]
    if attempts > 1 and others:  # the attempts before the last met another account's limit
        failovers = ",".join(f"{rng.choice(others)}:rate_limit_exceeded" for _ in range(attempts - 1))
    row = {
        "request_id": f"req_{rng.getrandbits(96):024x}",
        "started_at": round(at, 3),
        "route": route,
        "transport": transport,
        "account_id": account if served or status == 429 else None,
        "api_key_id": key,
        "model": model,
        "reasoning_effort": effort,
        "status": status,
        "error_code": code,
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
        "cost_usd": cost,
        "latency_ms": round(latency, 1),
        "ttft_ms": None if ttft is None else round(ttft, 1),
        "attempts": attempts,
        "session_key_hash": session,
        "routing": routing,
        "upstream_transport": "websocket" if transport == "websocket" or rng.random() < 0.3 else "http",
        "user_agent": USER_AGENTS[route],
        "failovers": failovers,
    }
    # Columns added later by other features take their defaults (text columns: empty).
    return tuple(row.get(column, "") for column in COLUMNS)


@orm.db_session
def _insert(orm_db: orm.Database, batch: list[tuple]) -> None:
    """One batch, counted into its keys' all-time totals and its accounts' last use in the same
    transaction (as the writer does)."""
    key_totals.add(orm_db, [tuple(row[i] for i in _KEY_FIELDS) for row in batch])
    last_use.add(orm_db, ((row[_ACCOUNT], row[_STARTED]) for row in batch))
    cursor = orm_db.get_connection().cursor()
    if orm_db.provider.dialect == "PostgreSQL":
        execute_values(
            cursor, f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES %s", batch, page_size=len(batch)
        )
    else:
        marks = ", ".join("?" * len(COLUMNS))
        cursor.executemany(f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES ({marks})", batch)


def fill(orm_db: orm.Database, spec: HistorySpec, roll_up: bool = True) -> int:
    """Write the history in batches (one transaction each), then roll it all up; the rows written."""
    written, batch = 0, []
    for row in rows(spec):
        batch.append(row)
        if len(batch) >= BATCH:
            _insert(orm_db, batch)
            written += len(batch)
            batch = []
    if batch:
        _insert(orm_db, batch)
        written += len(batch)
    if roll_up:
        rollups.roll_up_now(orm_db, time.time() if spec.now is None else spec.now)
    return written
