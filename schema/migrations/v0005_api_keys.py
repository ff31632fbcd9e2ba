"""API keys, their limit rules, the shared per-window counters and the in-flight reservations."""


def statements(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"""CREATE TABLE api_key (
            id {serial},
            name TEXT NOT NULL,
            key_prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            enabled BOOLEAN NOT NULL DEFAULT TRUE,
            expires_at DOUBLE PRECISION,
            allowed_models TEXT NOT NULL DEFAULT '',
            allowed_efforts TEXT NOT NULL DEFAULT '',
            allowed_accounts TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        f"""CREATE TABLE api_key_limit (
            id {serial},
            api_key_id BIGINT NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
            quantity TEXT NOT NULL,
            time_window TEXT NOT NULL,
            max_value DOUBLE PRECISION NOT NULL,
            model TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX api_key_limit_key ON api_key_limit (api_key_id)",
        # One row per limit rule and calendar window: settled usage plus what in-flight requests hold.
        """CREATE TABLE api_key_counter (
            limit_id BIGINT NOT NULL,
            window_start BIGINT NOT NULL,
            window_end BIGINT NOT NULL,
            used DOUBLE PRECISION NOT NULL DEFAULT 0,
            reserved DOUBLE PRECISION NOT NULL DEFAULT 0,
            PRIMARY KEY (limit_id, window_start)
        )""",
        f"""CREATE TABLE api_key_reservation (
            id {serial},
            request_id TEXT NOT NULL,
            limit_id BIGINT NOT NULL,
            window_start BIGINT NOT NULL,
            amount DOUBLE PRECISION NOT NULL,
            holder TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX api_key_reservation_request ON api_key_reservation (request_id)",
        "CREATE INDEX api_key_reservation_expiry ON api_key_reservation (expires_at)",
        "CREATE INDEX api_key_reservation_holder ON api_key_reservation (holder)",
        "CREATE INDEX request_log_api_key ON request_log (api_key_id, started_at)",
    ]
