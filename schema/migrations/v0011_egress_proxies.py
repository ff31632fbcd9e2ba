"""Egress proxies per account: the proxies (credentials as SecretBox ciphertexts), their weighted pools,
each account's route (a proxy, a pool, or direct when absent), and the route each request took."""


def statements(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"""CREATE TABLE egress_proxy (
            id {serial},
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            username TEXT NOT NULL DEFAULT '',
            password TEXT NOT NULL DEFAULT '',
            pool TEXT NOT NULL DEFAULT '',
            weight INTEGER NOT NULL DEFAULT 1,
            created_at DOUBLE PRECISION NOT NULL,
            checked_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            check_ok BOOLEAN NOT NULL DEFAULT TRUE,
            check_detail TEXT NOT NULL DEFAULT '',
            exit_address TEXT NOT NULL DEFAULT '',
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE account_egress (
            account_id BIGINT PRIMARY KEY,
            proxy_id BIGINT,
            pool TEXT NOT NULL DEFAULT ''
        )""",
        "ALTER TABLE request_log ADD COLUMN egress TEXT NOT NULL DEFAULT ''",
    ]
