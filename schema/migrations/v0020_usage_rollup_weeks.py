"""Weekly usage rollups (grain 'week', seven days from a multiple of 7 x 86400), each the sum of its
days, so a month's totals and breakdowns read four weeks and a few days per value instead of thirty
days. The rollup job keeps the weeks it touches from now on; this step sums the weeks already rolled
into days, including the ones whose raw rows retention has deleted."""

# Frozen here: server/usage/rollups.py's MEASURES when this step was written (12 sums, then the latency
# and time-to-first-token histograms of server/usage/histogram.py, 27 buckets each).
SUMS = (
    "requests", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens",
    "total_tokens", "cost_usd", "unpriced_requests", "latency_sum_ms", "ttft_count", "ttft_sum_ms",
)  # fmt: skip
BUCKET_COUNT = 27
WEEK = 7 * 86400


def statements(dialect: str) -> list[str]:
    measures = [*SUMS, *(f"{kind}_h{i:02d}" for kind in ("lat", "ttft") for i in range(BUCKET_COUNT))]
    # bucket_start is a positive integer: integer division floors it to its week on both databases.
    week = f"(bucket_start / {WEEK}) * {WEEK}"
    return [
        "DELETE FROM usage_rollup WHERE grain = 'week'",
        f"INSERT INTO usage_rollup (grain, bucket_start, facet, value, {', '.join(measures)}) "
        f"SELECT 'week', {week}, facet, value, {', '.join(f'SUM({m})' for m in measures)} "
        f"FROM usage_rollup WHERE grain = 'day' GROUP BY {week}, facet, value",
        # The planner's picture of the table gains the new grain now, not at autovacuum's next visit.
        *(["ANALYZE usage_rollup"] if dialect == "postgresql" else []),
    ]
