"""Browsing the raw request log: filtered pages, newest first, with a stable (started_at, id) cursor,
one row's detail, and the sessions (conversations) seen in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pony import orm

from server.errors import BadRequest
from server.usage.writer import COLUMNS

PAGE_MAX = 1000
MAX_ID = 2**62  # below every driver's 64-bit integer
MAX_TIME = 1e12  # a Unix time, in seconds, well past any log row
FIELDS = ("id", *COLUMNS)
_SELECT = f"SELECT {', '.join(FIELDS)} FROM request_log"


@dataclass(frozen=True, slots=True)
class LogFilter:
    since: float | None = None
    until: float | None = None
    account_id: int | None = None
    api_key_id: int | None = None
    model: str = ""
    status: str = ""  # "200", "4xx", "5xx", "error", "ok"
    error_code: str = ""
    transport: str = ""
    upstream_transport: str = ""
    route: str = ""
    session: str = ""
    request_id: str = ""

    def where(self) -> tuple[list[str], dict]:
        clauses, params = [], {}
        for name in ("since", "until", "account_id", "api_key_id"):
            value = getattr(self, name)
            if value is None:
                continue
            params[name] = value
            clauses.append(
                {"since": "started_at >= $since", "until": "started_at < $until"}.get(
                    name, f"{name} = ${name}"
                )
            )
        for name, column in (
            ("model", "model"),
            ("error_code", "error_code"),
            ("transport", "transport"),
            ("upstream_transport", "upstream_transport"),
            ("route", "route"),
            ("session", "session_key_hash"),
            ("request_id", "request_id"),
        ):
            value = getattr(self, name)
            if value:
                params[name] = value
                clauses.append(f"{column} = ${name}")
        if self.status:
            clauses.append(_status_clause(self.status, params))
        elif self.error_code:
            clauses.append(FAILED)  # a row with an error code failed
        return clauses, params


# Word for word the predicate of the failed rows' partial index (migration 22): a planner uses that index
# only for a query that states it. Filters that select failed rows only say it too, however redundantly.
FAILED = "(status >= 400 OR error_code <> '')"


def _status_clause(status: str, params: dict) -> str:
    status = status.strip().lower()
    if status == "error":
        return FAILED
    if status == "ok":
        return "(status < 400 AND error_code = '')"
    if len(status) == 3 and status[0] in "12345" and status[1:] == "xx":
        params["status_low"] = int(status[0]) * 100
        clause = "status >= $status_low AND status < $status_low + 100"
        return f"{clause} AND {FAILED}" if status[0] in "45" else clause
    if status.isdigit() and len(status) == 3:
        params["status"] = int(status)
        return f"status = $status AND {FAILED}" if int(status) >= 400 else "status = $status"
    raise BadRequest("'status' must be a code (429), a class (4xx), 'ok' or 'error'.", param="status")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly older than (started_at, id). repr() of a float round-trips."""

    started_at: float
    id: int

    def encode(self) -> str:
        return f"{self.started_at!r}_{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        try:
            at, _, ident = raw.partition("_")
            cursor = cls(float(at), int(ident))
        except ValueError:
            cursor = None
        # Out of range, the id overflows the database driver's integer (a 500); NaN matches no row.
        if cursor is None or not (0 <= cursor.started_at <= MAX_TIME and 0 <= cursor.id <= MAX_ID):
            raise BadRequest("'cursor' is not one this server handed out.", param="cursor")
        return cursor


@dataclass(frozen=True, slots=True)
class LogPage:
    rows: list[dict] = field(default_factory=list)
    next_cursor: str | None = None


@orm.db_session
def page(orm_db: orm.Database, spec: LogFilter, limit: int = 50, cursor: Cursor | None = None) -> LogPage:
    limit = max(1, min(int(limit), PAGE_MAX))
    sql, params = page_query(spec, limit + 1, cursor)
    rows = orm_db.select(sql, {}, params)
    found = [dict(zip(FIELDS, row, strict=True)) for row in rows[:limit]]
    more = len(rows) > limit
    return LogPage(found, Cursor(found[-1]["started_at"], found[-1]["id"]).encode() if more else None)


def page_query(spec: LogFilter, limit: int, cursor: Cursor | None = None) -> tuple[str, dict]:
    """The SQL (Pony's $-parameters) of a page of `limit` rows."""
    clauses, params = spec.where()
    if cursor is not None:
        clauses.append("(started_at < $c_at OR (started_at = $c_at AND id < $c_id))")
        params.update(c_at=cursor.started_at, c_id=cursor.id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"{_SELECT}{where} ORDER BY started_at DESC, id DESC LIMIT {limit}", params


@orm.db_session
def detail(orm_db: orm.Database, log_id: int) -> dict | None:
    rows = orm_db.select(f"{_SELECT} WHERE id = $log_id", {}, {"log_id": log_id})
    if not rows:
        return None
    row = dict(zip(FIELDS, rows[0], strict=True))
    row["account"] = _name(
        orm_db, "SELECT COALESCE(NULLIF(label, ''), email) FROM account WHERE id = $i", row["account_id"]
    )
    row["api_key"] = _name(orm_db, "SELECT name FROM api_key WHERE id = $i", row["api_key_id"])
    row["moved"] = row["routing"].startswith("sticky_moved:")
    row["move_reason"] = row["routing"].partition(":")[2] if row["moved"] else ""
    if row["session_key_hash"]:
        row["session_turn"] = int(
            orm_db.select(
                "SELECT COUNT(*) FROM request_log WHERE session_key_hash = $s AND started_at <= $at",
                {},
                {"s": row["session_key_hash"], "at": row["started_at"]},
            )[0]
        )
    return row


def _name(orm_db: orm.Database, sql: str, ident: int | None) -> str | None:
    if ident is None:
        return None
    rows = orm_db.select(sql, {}, {"i": ident})
    return rows[0] if rows else None


@orm.db_session
def sessions(orm_db: orm.Database, since: float, until: float, limit: int = 100) -> list[dict]:
    """Conversations active in the range, most recently seen first (from the rollup job's session rows)."""
    rows = orm_db.select(
        "SELECT session, first_seen, last_seen, turns, total_tokens, accounts, moves, errors, cost_usd "
        "FROM session_rollup WHERE last_seen >= $since AND first_seen < $until "
        f"ORDER BY last_seen DESC LIMIT {max(1, min(int(limit), PAGE_MAX))}",
        {},
        {"since": since, "until": until},
    )
    return [
        {
            "session": s,
            "first_seen": float(first),
            "last_seen": float(last),
            "turns": int(turns),
            "total_tokens": int(tokens),
            "accounts": int(accounts),
            "moves": int(moves),
            "errors": int(errors),
            "cost_usd": round(float(cost), 6),
        }
        for s, first, last, turns, tokens, accounts, moves, errors, cost in rows
    ]


@orm.db_session
def session_turns(orm_db: orm.Database, session: str, limit: int = PAGE_MAX) -> dict | None:
    """One conversation's turns in order, and every change of account with the reason the log gives."""
    rows = orm_db.select(
        f"{_SELECT} WHERE session_key_hash = $s ORDER BY started_at, id LIMIT {int(limit)}",
        {},
        {"s": session},
    )
    if not rows:
        return None
    turns = [dict(zip(FIELDS, row, strict=True)) for row in rows]
    names = {
        int(i): (label or email) for i, email, label in orm_db.select("SELECT id, email, label FROM account")
    }
    moves, previous = [], None
    for turn in turns:
        turn["account"] = names.get(turn["account_id"]) if turn["account_id"] is not None else None
        account = turn["account_id"]
        if account is not None and previous is not None and account != previous:
            routing = turn["routing"]
            moves.append(
                {
                    "at": turn["started_at"],
                    "log_id": turn["id"],
                    "from_account_id": previous,
                    "to_account_id": account,
                    "from_account": names.get(previous),
                    "to_account": turn["account"],
                    "reason": routing.partition(":")[2]
                    if routing.startswith("sticky_moved:")
                    else routing or "unknown",
                }
            )
        if account is not None:
            previous = account
    return {"session": session, "turns": turns, "moves": moves}
