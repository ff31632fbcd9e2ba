"""Limits and logs that say what is true: the amount a key reservation was granted (capped at what the
rule had left), the transport a request took upstream, and one heartbeat row per live replica (the
per-account in-flight cap is shared out over them)."""


def statements(dialect: str) -> list[str]:
    return [
        "ALTER TABLE api_key_counter ADD COLUMN last_grant DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE request_log ADD COLUMN upstream_transport TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE replica_heartbeat (
            replica_id TEXT PRIMARY KEY,
            seen_at DOUBLE PRECISION NOT NULL
        )""",
    ]
