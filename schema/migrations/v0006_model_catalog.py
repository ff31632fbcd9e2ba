"""The synced model catalog: one row per model slug, the upstream entry kept verbatim as JSON."""


def statements(dialect: str) -> list[str]:
    return [
        """CREATE TABLE model_entry (
            slug TEXT PRIMARY KEY,
            entry TEXT NOT NULL,
            plans TEXT NOT NULL,
            position INTEGER NOT NULL,
            synced_at DOUBLE PRECISION NOT NULL
        )""",
    ]
