"""Account lifecycle: a label, the latest polled usage, usage history, audit events, pending logins."""


def statements(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        "ALTER TABLE account ADD COLUMN label TEXT NOT NULL DEFAULT ''",
        # The latest /wham/usage answer (JSON of the parsed windows), so replicas learn it from the DB.
        "ALTER TABLE account ADD COLUMN usage_snapshot TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE account ADD COLUMN usage_polled_at DOUBLE PRECISION NOT NULL DEFAULT 0",
        # 'state' rows are status changes; 'audit' rows record actions (export, rename, re-login).
        "ALTER TABLE account_event ADD COLUMN kind TEXT NOT NULL DEFAULT 'state'",
        f"""CREATE TABLE account_usage (
            id {serial},
            account_id BIGINT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            primary_used DOUBLE PRECISION,
            primary_window_minutes INTEGER,
            primary_reset_at DOUBLE PRECISION,
            secondary_used DOUBLE PRECISION,
            secondary_window_minutes INTEGER,
            secondary_reset_at DOUBLE PRECISION,
            credits_balance DOUBLE PRECISION
        )""",
        "CREATE INDEX account_usage_account ON account_usage (account_id, at)",
        "CREATE INDEX account_usage_at ON account_usage (at)",
        # A sign-in in progress (browser PKCE or device code): any worker of any replica can finish it.
        """CREATE TABLE login_flow (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL UNIQUE,
            code_verifier TEXT NOT NULL DEFAULT '',
            device_auth_id TEXT NOT NULL DEFAULT '',
            user_code TEXT NOT NULL DEFAULT '',
            poll_interval DOUBLE PRECISION NOT NULL DEFAULT 5,
            status TEXT NOT NULL DEFAULT 'pending',
            error TEXT NOT NULL DEFAULT '',
            account_id BIGINT,
            reauth_account_id BIGINT,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX login_flow_status ON login_flow (status, expires_at)",
    ]
