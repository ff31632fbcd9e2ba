"""Leases (exactly-one-holder coordination) and the change marker replicas poll."""


def statements(dialect: str) -> list[str]:
    return [
        """CREATE TABLE lease (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            fencing_token BIGINT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE change_marker (
            name TEXT PRIMARY KEY,
            version BIGINT NOT NULL
        )""",
        "INSERT INTO change_marker (name, version) VALUES ('roster', 1)",
    ]
