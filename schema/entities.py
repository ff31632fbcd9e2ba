"""Pony entities: the shape of every table, defined once.

Tables are created by the numbered migrations in schema/migrations, never by Pony; Pony only checks at
bind time that the tables it maps exist. Times are epoch seconds (float) to stay portable.
"""

from __future__ import annotations

from pony import orm


def define_database() -> orm.Database:
    db = orm.Database()

    class Lease(db.Entity):
        _table_ = "lease"
        name = orm.PrimaryKey(str)
        holder = orm.Required(str)
        fencing_token = orm.Required(int, size=64)
        expires_at = orm.Required(float)

    class ChangeMarker(db.Entity):
        """Bumped whenever accounts, keys or settings change; replicas poll it to know when to reload."""

        _table_ = "change_marker"
        name = orm.PrimaryKey(str)
        version = orm.Required(int, size=64)

    class AppSetting(db.Entity):
        """A run-time setting (JSON value), overriding the CODEX_LB_* default until changed again."""

        _table_ = "app_setting"
        name = orm.PrimaryKey(str)
        value = orm.Required(str)
        updated_at = orm.Required(float)

    class ModelEntry(db.Entity):
        """A model of the synced catalog: the upstream entry (JSON) and the plans seen serving it."""

        _table_ = "model_entry"
        slug = orm.PrimaryKey(str)
        entry = orm.Required(str)
        plans = orm.Required(str)  # JSON list of plan types
        position = orm.Required(int)
        synced_at = orm.Required(float)

    class Account(db.Entity):
        """A pooled ChatGPT account. Tokens are SecretBox ciphertexts, never plaintext."""

        _table_ = "account"
        id = orm.PrimaryKey(int, auto=True, size=64)
        chatgpt_account_id = orm.Required(str, unique=True)
        email = orm.Optional(str, default="")
        plan_type = orm.Optional(str, default="")
        status = orm.Required(str, default="active")
        status_reason = orm.Optional(str, default="")
        status_until = orm.Required(float, default=0.0)
        slot = orm.Required(int, unique=True)
        access_token = orm.Required(str)
        refresh_token = orm.Required(str)
        id_token = orm.Required(str)
        access_expires_at = orm.Required(float, default=0.0)
        last_refresh_at = orm.Required(float, default=0.0)
        created_at = orm.Required(float)
        updated_at = orm.Required(float)
        label = orm.Optional(str, default="")
        usage_snapshot = orm.Optional(str, default="")  # JSON of the latest /wham/usage windows
        usage_polled_at = orm.Required(float, default=0.0)
        routing_policy = orm.Required(str, default="normal")  # server.balancer.policies
        reserve_percent = orm.Required(float, default=0.0)

    class AccountEvent(db.Entity):
        """One state change of an account, with its reason."""

        _table_ = "account_event"
        id = orm.PrimaryKey(int, auto=True, size=64)
        account_id = orm.Required(int, size=64)
        at = orm.Required(float)
        from_status = orm.Optional(str, default="")
        to_status = orm.Required(str)
        reason = orm.Optional(str, default="")
        kind = orm.Required(str, default="state")  # "state" (a status change) or "audit" (an action)

    class AccountUsage(db.Entity):
        """One usage poll of an account (kept 28 days) for trends."""

        _table_ = "account_usage"
        id = orm.PrimaryKey(int, auto=True, size=64)
        account_id = orm.Required(int, size=64)
        at = orm.Required(float)
        primary_used = orm.Optional(float)
        primary_window_minutes = orm.Optional(int)
        primary_reset_at = orm.Optional(float)
        secondary_used = orm.Optional(float)
        secondary_window_minutes = orm.Optional(int)
        secondary_reset_at = orm.Optional(float)
        credits_balance = orm.Optional(float)

    class LoginFlow(db.Entity):
        """A sign-in in progress (browser PKCE or device code); the verifier is a SecretBox ciphertext."""

        _table_ = "login_flow"
        id = orm.PrimaryKey(str)
        kind = orm.Required(str)  # "browser" or "device"
        state = orm.Required(str, unique=True)
        code_verifier = orm.Optional(str, default="")
        device_auth_id = orm.Optional(str, default="")
        user_code = orm.Optional(str, default="")
        poll_interval = orm.Required(float, default=5.0)
        # pending, exchanging, completed, failed, expired, denied
        status = orm.Required(str, default="pending")
        error = orm.Optional(str, default="")
        account_id = orm.Optional(int, size=64)
        reauth_account_id = orm.Optional(int, size=64)
        created_at = orm.Required(float)
        expires_at = orm.Required(float)
        updated_at = orm.Required(float)

    class RequestLog(db.Entity):
        """One proxied request (or WebSocket turn): who served it, what it cost, how it went."""

        _table_ = "request_log"
        id = orm.PrimaryKey(int, auto=True, size=64)
        request_id = orm.Required(str)
        started_at = orm.Required(float)
        route = orm.Required(str)
        transport = orm.Required(str)
        account_id = orm.Optional(int, size=64)
        api_key_id = orm.Optional(int, size=64)
        model = orm.Optional(str, default="")
        reasoning_effort = orm.Optional(str, default="")
        status = orm.Required(int)
        error_code = orm.Optional(str, default="")
        input_tokens = orm.Required(int, size=64, default=0)
        cached_input_tokens = orm.Required(int, size=64, default=0)
        output_tokens = orm.Required(int, size=64, default=0)
        reasoning_tokens = orm.Required(int, size=64, default=0)
        total_tokens = orm.Required(int, size=64, default=0)
        cost_usd = orm.Optional(float)
        latency_ms = orm.Required(float, default=0.0)
        ttft_ms = orm.Optional(float)
        attempts = orm.Required(int, default=1)
        session_key_hash = orm.Optional(str, default="")
        routing = orm.Optional(str, default="")
        upstream_transport = orm.Optional(str, default="")  # "http", "websocket" or "" (none reached)
        egress = orm.Optional(str, default="")  # the route taken: "" direct, "proxy:<name>"
        user_agent = orm.Optional(str, default="")
        failovers = orm.Optional(str, default="")  # "<account id>:<code>" per failed attempt

    class EgressProxy(db.Entity):
        """An egress proxy accounts can be bound to; username and password are SecretBox ciphertexts."""

        _table_ = "egress_proxy"
        id = orm.PrimaryKey(int, auto=True, size=64)
        name = orm.Required(str, unique=True)
        url = orm.Required(str)  # scheme://host:port, no credentials
        username = orm.Optional(str, default="")
        password = orm.Optional(str, default="")
        pool = orm.Optional(str, default="")
        weight = orm.Required(int, default=1)
        created_at = orm.Required(float)
        checked_at = orm.Required(float, default=0.0)
        check_ok = orm.Required(bool, default=True)
        check_detail = orm.Optional(str, default="")
        exit_address = orm.Optional(str, default="")
        latency_ms = orm.Required(float, default=0.0)

    class AccountEgress(db.Entity):
        """An account's route: one proxy, or a pool name; no row means direct."""

        _table_ = "account_egress"
        account_id = orm.PrimaryKey(int, size=64)
        proxy_id = orm.Optional(int, size=64)
        pool = orm.Optional(str, default="")

    class ApiKey(db.Entity):
        """A client API key: only the SHA-256 of the secret and a short display prefix are stored.
        The allow-lists are JSON arrays, '' meaning no restriction."""

        _table_ = "api_key"
        id = orm.PrimaryKey(int, auto=True, size=64)
        name = orm.Required(str)
        key_prefix = orm.Required(str)
        key_hash = orm.Required(str, unique=True)
        enabled = orm.Required(bool, default=True)
        expires_at = orm.Optional(float)
        allowed_models = orm.Optional(str, default="")
        allowed_efforts = orm.Optional(str, default="")
        allowed_accounts = orm.Optional(str, default="")
        created_at = orm.Required(float)
        updated_at = orm.Required(float)

    class ApiKeyLimit(db.Entity):
        """One limit rule of a key: `max_value` of a quantity per calendar window, optionally per model."""

        _table_ = "api_key_limit"
        id = orm.PrimaryKey(int, auto=True, size=64)
        api_key_id = orm.Required(int, size=64)
        quantity = orm.Required(str)  # tokens | cost_usd | requests
        time_window = orm.Required(str)  # minute | hour | day | week | month
        max_value = orm.Required(float)
        model = orm.Optional(str, default="")

    class ApiKeyCounter(db.Entity):
        """Shared counter of one rule in one window: settled usage and what in-flight requests reserved."""

        _table_ = "api_key_counter"
        limit_id = orm.Required(int, size=64)
        window_start = orm.Required(int, size=64)  # epoch seconds (UTC calendar boundary)
        window_end = orm.Required(int, size=64)
        used = orm.Required(float, default=0.0)
        reserved = orm.Required(float, default=0.0)
        last_grant = orm.Required(float, default=0.0)  # what the latest reservation got (capped at room)
        orm.PrimaryKey(limit_id, window_start)

    class AccountModelBucket(db.Entity):
        """One account's state in one per-model limit bucket (the backend's `codex_other` family)."""

        _table_ = "account_model_bucket"
        account_id = orm.Required(int, size=64)
        bucket = orm.Required(str)
        models = orm.Required(str, default="[]")  # JSON array of the model slugs it meters
        used_percent = orm.Optional(float)
        reset_at = orm.Optional(float)
        cooling_until = orm.Required(float, default=0.0)
        updated_at = orm.Required(float)
        orm.PrimaryKey(account_id, bucket)

    class ReplicaHeartbeat(db.Entity):
        """One live replica (one server process tree): renewed every few seconds while it runs."""

        _table_ = "replica_heartbeat"
        replica_id = orm.PrimaryKey(str)
        seen_at = orm.Required(float)

    class ApiKeyReservation(db.Entity):
        """What one in-flight request holds against one counter; expires if its worker stops renewing it."""

        _table_ = "api_key_reservation"
        id = orm.PrimaryKey(int, auto=True, size=64)
        request_id = orm.Required(str)
        limit_id = orm.Required(int, size=64)
        window_start = orm.Required(int, size=64)
        amount = orm.Required(float)
        holder = orm.Required(str)
        expires_at = orm.Required(float)

    class DashboardAuth(db.Entity):
        """The dashboard's credentials, one row (id 1): argon2id hashes and SecretBox ciphertexts."""

        _table_ = "dashboard_auth"
        id = orm.PrimaryKey(int)
        admin_password_hash = orm.Optional(str, default="")
        viewer_password_hash = orm.Optional(str, default="")
        totp_secret = orm.Optional(str, default="")
        totp_pending_secret = orm.Optional(str, default="")
        totp_last_step = orm.Required(int, size=64, default=0)
        bootstrap_token_hash = orm.Optional(str, default="")
        bootstrap_token_sealed = orm.Optional(str, default="")
        updated_at = orm.Required(float, default=0.0)

    class DashboardRecoveryCode(db.Entity):
        """An unused one-time TOTP recovery code (SHA-256 of it); using it deletes the row."""

        _table_ = "dashboard_recovery_code"
        id = orm.PrimaryKey(int, auto=True, size=64)
        code_hash = orm.Required(str, unique=True)
        created_at = orm.Required(float)

    class DashboardSession(db.Entity):
        """A signed-in dashboard session; the cookie's token is stored as its SHA-256 only."""

        _table_ = "dashboard_session"
        id = orm.PrimaryKey(str)
        token_hash = orm.Required(str, unique=True)
        role = orm.Required(str)
        user_name = orm.Optional(str, default="")
        created_at = orm.Required(float)
        last_seen_at = orm.Required(float)
        expires_at = orm.Required(float)
        client_address = orm.Optional(str, default="")
        user_agent = orm.Optional(str, default="")

    class DashboardAuthFailure(db.Entity):
        """A sign-in attempt, written before its check and deleted by a success: what throttles."""

        _table_ = "dashboard_auth_failure"
        id = orm.PrimaryKey(int, auto=True, size=64)
        client_address = orm.Required(str)
        at = orm.Required(float)

    class DashboardSignInGate(db.Entity):
        """Per address: the row locked while its failures are counted, and its one check in flight."""

        _table_ = "dashboard_sign_in_gate"
        client_address = orm.PrimaryKey(str)
        checking_until = orm.Required(float, default=0.0)

    class AuditEvent(db.Entity):
        """A security-relevant action: who, from where, what, on what; details never hold a secret."""

        _table_ = "audit_event"
        id = orm.PrimaryKey(int, auto=True, size=64)
        at = orm.Required(float)
        actor = orm.Optional(str, default="")
        client_address = orm.Optional(str, default="")
        action = orm.Required(str)
        target = orm.Optional(str, default="")
        details = orm.Required(str, default="{}")

    return db
