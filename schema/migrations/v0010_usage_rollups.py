"""Hourly and daily usage rollups of the request log (with fixed-bucket latency histograms), the rollup
job's watermark, and the indexes the dashboard's request-log filters page through. (Rewritten for the
shape of step 11, a row per facet; a database that ran the first version gets it from step 11.)"""

# Frozen here: server/usage/histogram.py's BUCKET_COUNT when this step was written (26 bounds + 1).
BUCKET_COUNT = 27


def statements(dialect: str) -> list[str]:
    histograms = ",\n".join(
        f"            {kind}_h{i:02d} BIGINT NOT NULL DEFAULT 0"
        for kind in ("lat", "ttft")
        for i in range(BUCKET_COUNT)
    )
    return [
        "CREATE TABLE IF NOT EXISTS usage_rollup_state (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS usage_rollup (
            grain TEXT NOT NULL,
            facet TEXT NOT NULL,
            value TEXT NOT NULL DEFAULT '',
            bucket_start BIGINT NOT NULL,
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
        "CREATE UNIQUE INDEX IF NOT EXISTS usage_rollup_cell "
        "ON usage_rollup (grain, facet, bucket_start, value)",
        "CREATE INDEX request_log_key ON request_log (api_key_id, started_at)",
        "CREATE INDEX request_log_session ON request_log (session_key_hash, started_at)",
    ]
