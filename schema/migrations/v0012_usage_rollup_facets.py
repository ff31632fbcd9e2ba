"""Usage rollups by one dimension at a time (all, account, key, model, route, transport, error code)
instead of every combination, which at a million rows made nearly as many rollup rows as raw ones. The
rollups are derived data: the table is rebuilt from the raw rows by the next pass of the rollup job.
(Step 10 creates this same shape now; both steps run in either order, as branches may land them.)"""

# Frozen here: server/usage/histogram.py's BUCKET_COUNT when this step was written (26 bounds + 1).
BUCKET_COUNT = 27


def statements(dialect: str) -> list[str]:
    histograms = ",\n".join(
        f"            {kind}_h{i:02d} BIGINT NOT NULL DEFAULT 0"
        for kind in ("lat", "ttft")
        for i in range(BUCKET_COUNT)
    )
    return [
        "DROP TABLE IF EXISTS usage_rollup",
        "CREATE TABLE IF NOT EXISTS usage_rollup_state (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "DELETE FROM usage_rollup_state",
        f"""CREATE TABLE usage_rollup (
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
        "CREATE UNIQUE INDEX usage_rollup_cell ON usage_rollup (grain, facet, bucket_start, value)",
    ]
