"""Hourly and daily usage rollups of the request log (with fixed-bucket latency histograms), the rollup
job's watermark, and the indexes the dashboard's request-log filters page through."""

# Frozen here: server/usage/histogram.py's BUCKET_COUNT when this step was written (26 bounds + 1).
BUCKET_COUNT = 27


def statements(dialect: str) -> list[str]:
    histograms = ",\n".join(
        f"            {kind}_h{i:02d} BIGINT NOT NULL DEFAULT 0"
        for kind in ("lat", "ttft")
        for i in range(BUCKET_COUNT)
    )
    return [
        f"""CREATE TABLE usage_rollup (
            grain TEXT NOT NULL,
            bucket_start BIGINT NOT NULL,
            account_id BIGINT NOT NULL DEFAULT 0,
            api_key_id BIGINT NOT NULL DEFAULT 0,
            model TEXT NOT NULL DEFAULT '',
            route TEXT NOT NULL DEFAULT '',
            transport TEXT NOT NULL DEFAULT '',
            error_code TEXT NOT NULL DEFAULT '',
            requests BIGINT NOT NULL DEFAULT 0,
            errors BIGINT NOT NULL DEFAULT 0,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            cached_input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            total_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            unpriced_requests BIGINT NOT NULL DEFAULT 0,
            latency_sum_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_count BIGINT NOT NULL DEFAULT 0,
            ttft_sum_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
{histograms}
        )""",
        "CREATE UNIQUE INDEX usage_rollup_cell ON usage_rollup "
        "(grain, bucket_start, account_id, api_key_id, model, route, transport, error_code)",
        "CREATE TABLE usage_rollup_state (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "CREATE INDEX request_log_key ON request_log (api_key_id, started_at)",
        "CREATE INDEX request_log_session ON request_log (session_key_hash, started_at)",
    ]
