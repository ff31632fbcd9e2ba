"""One request-log row per request id: the writer retries a batch whose commit it did not hear back
about (a connection lost around the commit), and the retry must not count the requests twice."""


def statements(dialect: str) -> list[str]:
    return [
        # Rows written twice before this step: keep the first of each.
        "DELETE FROM request_log WHERE id NOT IN (SELECT MIN(id) FROM request_log GROUP BY request_id)",
        "CREATE UNIQUE INDEX request_log_request_id ON request_log (request_id)",
    ]
