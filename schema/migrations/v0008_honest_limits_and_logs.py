"""Limits and logs that say what is true: the amount a key reservation was granted (capped at what the
rule had left), the transport a request took upstream, and one heartbeat row per live replica (the
per-account in-flight cap is shared out over them), and per-model limit buckets of each account."""


def statements(dialect: str) -> list[str]:
    return [
        "ALTER TABLE api_key_counter ADD COLUMN last_grant DOUBLE PRECISION NOT NULL DEFAULT 0",
        "ALTER TABLE request_log ADD COLUMN upstream_transport TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE replica_heartbeat (
            replica_id TEXT PRIMARY KEY,
            seen_at DOUBLE PRECISION NOT NULL
        )""",
        # Per-model limits: one account's state in one bucket (limit name), and the models it meters.
        """CREATE TABLE account_model_bucket (
            account_id BIGINT NOT NULL,
            bucket TEXT NOT NULL,
            models TEXT NOT NULL DEFAULT '[]',
            used_percent DOUBLE PRECISION,
            reset_at DOUBLE PRECISION,
            cooling_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (account_id, bucket)
        )""",
    ]
