"""An index holding every column a key's all-time totals sum (GET /v1/usage, the API-key list), so one
key's figures are read from its own index entries, not a scan of the whole log (350 ms at 1M rows);
and the duplicate of request_log_key that step 5 and step 10 both made is dropped."""


def statements(dialect: str) -> list[str]:
    return [
        "CREATE INDEX IF NOT EXISTS request_log_key_totals ON request_log "
        "(api_key_id, attempts, error_code, started_at, total_tokens, cached_input_tokens, cost_usd)",
        "DROP INDEX IF EXISTS request_log_api_key",
    ]
