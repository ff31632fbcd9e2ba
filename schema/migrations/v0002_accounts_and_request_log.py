"""Accounts (the pool), their state history, and the request log."""


def statements(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"""CREATE TABLE account (
            id {serial},
            chatgpt_account_id TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL DEFAULT '',
            plan_type TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'active',
            status_reason TEXT NOT NULL DEFAULT '',
            status_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            slot INTEGER NOT NULL UNIQUE,
            access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            id_token TEXT NOT NULL,
            access_expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            last_refresh_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        f"""CREATE TABLE account_event (
            id {serial},
            account_id BIGINT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            from_status TEXT NOT NULL,
            to_status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX account_event_account ON account_event (account_id, at)",
        f"""CREATE TABLE request_log (
            id {serial},
            request_id TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            route TEXT NOT NULL,
            transport TEXT NOT NULL,
            account_id BIGINT,
            api_key_id BIGINT,
            model TEXT NOT NULL DEFAULT '',
            reasoning_effort TEXT NOT NULL DEFAULT '',
            status INTEGER NOT NULL,
            error_code TEXT NOT NULL DEFAULT '',
            input_tokens BIGINT NOT NULL DEFAULT 0,
            cached_input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            total_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 1,
            session_key_hash TEXT NOT NULL DEFAULT '',
            routing TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX request_log_started ON request_log (started_at)",
        "CREATE INDEX request_log_account ON request_log (account_id, started_at)",
    ]
