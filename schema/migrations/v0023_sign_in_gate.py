"""One row per address that tried to sign in: the lock that makes counting its failures and recording its
next attempt one step on every worker and replica, and the mark of the one check it may have in flight.
The attempt rows themselves stay in dashboard_auth_failure, written before the check and deleted by a
success, so an attempt counts as a failure until it proves otherwise."""


def statements(dialect: str) -> list[str]:
    return [
        """CREATE TABLE dashboard_sign_in_gate (
            client_address TEXT PRIMARY KEY,
            checking_until DOUBLE PRECISION NOT NULL DEFAULT 0
        )""",
    ]
