"""The failed requests of the log in an index of their own, newest first: the Overview's "recent failures"
and the Logs page filtered to errors walked every row of the range to find them. A week of 60,000
successful requests took 45 ms on SQLite to answer that it had none; a busy pool's week is several
times that. The predicate must read exactly as `server/usage/browse.py` writes it, or no planner uses
the index."""

FAILED = "(status >= 400 OR error_code <> '')"


def statements(dialect: str) -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS request_log_failed ON request_log (started_at, id) WHERE {FAILED}",
    ]
