"""The usage report's reads of chosen values (the top accounts' series of a split, every figure of the
top rows) name the values and a range of days. With `value` after `bucket_start`, as in the rollup's
own unique index, PostgreSQL walked the whole range once per value (25 ms for 8 accounts over the
15,000 account-days a month of 500 accounts makes); with `value` before it, each value is a short range."""


def statements(dialect: str) -> list[str]:
    return [
        "CREATE INDEX IF NOT EXISTS usage_rollup_by_value "
        "ON usage_rollup (grain, facet, value, bucket_start)",
    ]
