"""Dashboard sign-in: credentials (one row), server-side sessions, recovery codes, sign-in failures for
throttling, and the audit log."""


def statements(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        # Exactly one row (id = 1). Password hashes are argon2id strings; TOTP secrets and the bootstrap
        # token's copy for `codex-lb dashboard show-bootstrap-token` are SecretBox ciphertexts.
        """CREATE TABLE dashboard_auth (
            id INTEGER PRIMARY KEY,
            admin_password_hash TEXT NOT NULL DEFAULT '',
            viewer_password_hash TEXT NOT NULL DEFAULT '',
            totp_secret TEXT NOT NULL DEFAULT '',
            totp_pending_secret TEXT NOT NULL DEFAULT '',
            totp_last_step BIGINT NOT NULL DEFAULT 0,
            bootstrap_token_hash TEXT NOT NULL DEFAULT '',
            bootstrap_token_sealed TEXT NOT NULL DEFAULT '',
            updated_at DOUBLE PRECISION NOT NULL DEFAULT 0
        )""",
        "INSERT INTO dashboard_auth (id) VALUES (1)",
        f"""CREATE TABLE dashboard_recovery_code (
            id {serial},
            code_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        # The cookie carries a random token; only its SHA-256 is stored. `id` is the public handle.
        """CREATE TABLE dashboard_session (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            user_name TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            last_seen_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            client_address TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        )""",
        f"""CREATE TABLE dashboard_auth_failure (
            id {serial},
            client_address TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX dashboard_auth_failure_address ON dashboard_auth_failure (client_address, at)",
        "CREATE INDEX dashboard_auth_failure_at ON dashboard_auth_failure (at)",
        f"""CREATE TABLE audit_event (
            id {serial},
            at DOUBLE PRECISION NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            client_address TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            details TEXT NOT NULL DEFAULT '{{}}'
        )""",
        "CREATE INDEX audit_event_at ON audit_event (at)",
        "CREATE INDEX audit_event_action ON audit_event (action, at)",
    ]
