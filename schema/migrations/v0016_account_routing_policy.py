"""Each account's routing policy (normal, burn_first, preserve) and, for preserve, the percent of its
tighter window kept in reserve (server.balancer.policies)."""


def statements(dialect: str) -> list[str]:
    return [
        "ALTER TABLE account ADD COLUMN routing_policy TEXT NOT NULL DEFAULT 'normal'",
        "ALTER TABLE account ADD COLUMN reserve_percent DOUBLE PRECISION NOT NULL DEFAULT 0",
    ]
