"""Settings operators change at run time (the dashboard's Settings page), one row per setting."""


def statements(dialect: str) -> list[str]:
    return [
        """CREATE TABLE app_setting (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
    ]
