"""Request-log rows as an older version wrote them: straight into the table, none of the rows the
writer keeps beside it (key totals, accounts' last use), for tests of the migrations that backfill those."""

from __future__ import annotations

from server.runtime import migrator
from server.usage.writer import COLUMNS


def raw_insert(database_url: str, rows: list[tuple]) -> None:
    conn = migrator.connect(database_url)
    mark = "?" if database_url.startswith("sqlite") else "%s"
    marks = ", ".join([mark] * len(COLUMNS))
    try:
        conn.cursor().executemany(f"INSERT INTO request_log ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        conn.commit()
    finally:
        conn.close()
