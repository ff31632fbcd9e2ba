"""The usage report ranks every account, key, model and route of a range by its requests before it sums
the figures of the top ones (server/usage/reports.py). With the counts in an index of their own the
ranking reads the index alone: a pool of 500 accounts makes 15,000 account-days a month, whose wide
rollup rows (some 70 columns) it otherwise reads one by one."""


def statements(dialect: str) -> list[str]:
    return [
        "CREATE INDEX IF NOT EXISTS usage_rollup_rank "
        "ON usage_rollup (grain, facet, bucket_start, value, requests, errors)",
    ]
