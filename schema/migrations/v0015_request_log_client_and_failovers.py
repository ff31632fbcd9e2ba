"""The request log keeps the client's user agent and the failures each failed-over attempt met
("<account id>:<code>" comma-separated), for the dashboard's row detail."""


def statements(dialect: str) -> list[str]:
    return [
        "ALTER TABLE request_log ADD COLUMN user_agent TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE request_log ADD COLUMN failovers TEXT NOT NULL DEFAULT ''",
    ]
