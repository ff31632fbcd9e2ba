"""Two costs that grew with scale. Each key's all-time figures get a row of their own (api_key_totals),
added to by the request-log writer, so GET /v1/usage and the API-key list read a row per key instead of
the key's share of the log (56 ms for a busy key at 1M rows); backfilled from the log as it stands, and
the covering index that made that read cheaper goes, as nothing reads it now. And each account row
carries the roster version that last changed it (change_seq), so a worker's reload reads the accounts
changed since its last one instead of all of them."""

# Served: reached an account. Refused: turned away by the key's own rules (server/usage/key_totals.py).
# Spelled out here, as a migration must keep meaning what it meant when it ran.
FROM_LOG = (
    "SELECT api_key_id, COUNT(CASE WHEN attempts > 0 THEN 1 END), COALESCE(SUM(total_tokens), 0), "
    "COALESCE(SUM(cached_input_tokens), 0), COALESCE(SUM(cost_usd), 0), "
    "MAX(CASE WHEN attempts > 0 THEN started_at END), COUNT(CASE WHEN attempts = 0 AND error_code IN "
    "('api_key_limit_reached', 'model_not_allowed', 'reasoning_effort_not_allowed') THEN 1 END) "
    "FROM request_log WHERE api_key_id IS NOT NULL GROUP BY api_key_id"
)


def statements(dialect: str) -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS api_key_totals (
            api_key_id BIGINT PRIMARY KEY,
            request_count BIGINT NOT NULL DEFAULT 0,
            total_tokens BIGINT NOT NULL DEFAULT 0,
            cached_input_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            last_used_at DOUBLE PRECISION,
            refused_count BIGINT NOT NULL DEFAULT 0
        )""",
        "DELETE FROM api_key_totals",
        "INSERT INTO api_key_totals (api_key_id, request_count, total_tokens, cached_input_tokens, cost_usd, "
        f"last_used_at, refused_count) {FROM_LOG}",
        "DROP INDEX IF EXISTS request_log_key_totals",
        "ALTER TABLE account ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX account_change_seq ON account (change_seq)",
    ]
