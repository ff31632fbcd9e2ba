"""What each dashboard API route answers, as OpenAPI 3.0 schemas: the response half of /api/openapi.json
(server/api/openapi.py attaches them). The dashboard's zod schemas are checked against these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
ANY: Schema = {}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def one_of(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def mapping(values: Schema) -> Schema:
    """An object whose keys are data (model names, dates…), each value alike."""
    return {"type": "object", "additionalProperties": values}


def record(required: dict[str, Schema], optional: dict[str, Schema] | None = None, **extra: Any) -> Schema:
    """An object with these fields; `optional` ones may be absent."""
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def extended(base: Schema, required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """`base` with more fields (or other schemas for some of its own)."""
    fields = {**base["properties"], **required, **(optional or {})}
    kept = [name for name in base.get("required", []) if name not in (optional or {})]
    schema: Schema = {**base, "properties": fields, "required": kept + [n for n in required if n not in kept]}
    return schema


def without(base: Schema, *names: str) -> Schema:
    return {
        **base,
        "properties": {k: v for k, v in base["properties"].items() if k not in names},
        "required": [n for n in base.get("required", []) if n not in names],
    }


TIME = nullable(NUMBER)  # Unix seconds; null: never, or not known
DELETED = record({"deleted": INTEGER})

# --- accounts ---
USAGE_WINDOW = nullable(
    record({"used_percent": NUMBER, "window_minutes": nullable(NUMBER), "reset_at": TIME})
)
ACCOUNT_USAGE = nullable(
    record(
        {},
        {
            "primary": USAGE_WINDOW,
            "secondary": USAGE_WINDOW,
            "credits": nullable(
                record(
                    {},
                    {
                        "has_credits": nullable(BOOLEAN),
                        "unlimited": nullable(BOOLEAN),
                        "balance": nullable(NUMBER),
                    },
                )
            ),
            "plan_type": nullable(STRING),
        },
    )
)
ACCOUNT_ROUTE = record(
    {
        "account_id": INTEGER,
        "bound_to": STRING,
        "proxy_id": nullable(INTEGER),
        "pool": STRING,
        "available": BOOLEAN,
        "reason": nullable(STRING),
        "route": nullable(STRING),
    }
)
# The stored account (AccountSummary.public()).
ACCOUNT_RECORD = record(
    {
        "id": INTEGER,
        "chatgpt_account_id": STRING,
        "label": STRING,
        "email": STRING,
        "plan_type": STRING,
        "status": STRING,
        "status_reason": STRING,
        "status_until": TIME,
        "status_since": TIME,
        "slot": INTEGER,
        "created_at": NUMBER,
        "last_refresh_at": TIME,
        "access_expires_at": TIME,
        "usage": ACCOUNT_USAGE,
        "usage_polled_at": TIME,
        "routing_policy": one_of("normal", "burn_first", "preserve"),
        "reserve_percent": NUMBER,
    }
)
# ...with what this worker knows of it now: an action's answer.
ACCOUNT = extended(
    ACCOUNT_RECORD,
    {},
    {
        "last_used_at": TIME,
        "live": record(
            {
                "in_flight": INTEGER,
                "cooldown_until": TIME,
                "primary_used_percent": NUMBER,
                "primary_reset_at": TIME,
                "secondary_used_percent": NUMBER,
                "secondary_reset_at": TIME,
            }
        ),
        "model_buckets": array(record({}, additionalProperties=True)),
        "egress": ACCOUNT_ROUTE,
    },
)
ACCOUNT_EVENT = record({"at": NUMBER, "kind": STRING, "from": STRING, "to": STRING, "reason": STRING})
LOGIN_FLOW = record(
    {
        "flow_id": STRING,
        "kind": STRING,
        "status": STRING,
        "error": nullable(STRING),
        "account_id": nullable(INTEGER),
        "reauth_account_id": nullable(INTEGER),
        "expires_at": NUMBER,
    },
    {
        "user_code": nullable(STRING),
        "authorize_url": STRING,
        "redirect_uri": STRING,
        "verification_url": STRING,
        "interval": NUMBER,
    },
)
USAGE_POINT = record(
    {
        "at": NUMBER,
        "primary_used": nullable(NUMBER),
        "primary_window_minutes": nullable(NUMBER),
        "primary_reset_at": TIME,
        "secondary_used": nullable(NUMBER),
        "secondary_window_minutes": nullable(NUMBER),
        "secondary_reset_at": TIME,
        "credits_balance": nullable(NUMBER),
    }
)
IMPORT_RESULT = record(
    {
        "imported": array(extended(ACCOUNT_RECORD, {"source": STRING, "created": BOOLEAN})),
        "errors": array(record({"source": STRING, "error": STRING, "code": STRING})),
    }
)

# --- API keys ---
LIMIT_STATUS = record(
    {
        "id": INTEGER,
        "quantity": one_of("tokens", "cost_usd", "requests"),
        "window": STRING,
        "window_kind": STRING,
        "max": NUMBER,
        "model": nullable(STRING),
        "used": NUMBER,
        "reserved": NUMBER,
        "remaining": NUMBER,
        "window_start": STRING,
        "resets_at": STRING,
    }
)
API_KEY = record(
    {
        "id": INTEGER,
        "name": STRING,
        "key_prefix": STRING,
        "enabled": BOOLEAN,
        "created_at": NUMBER,
        "updated_at": NUMBER,
        "expires_at": TIME,
        "last_used_at": TIME,
        "allowed_models": nullable(array(STRING)),
        "allowed_reasoning_efforts": nullable(array(STRING)),
        "allowed_account_ids": nullable(array(INTEGER)),
        "limits": array(LIMIT_STATUS),
        "usage": record(
            {
                "request_count": INTEGER,
                "refused_count": INTEGER,
                "total_tokens": INTEGER,
                "cached_input_tokens": INTEGER,
                "cost_usd": NUMBER,
            }
        ),
    },
    {"key": STRING},  # the full secret, only right after it was made
)

# --- settings: the known ones; a newer server may add more ---
MODEL_PRICE = record({"input": NUMBER, "cached_input": NUMBER, "output": NUMBER})  # USD per 1M tokens
RUNTIME_SETTINGS = record(
    {
        "routing_strategy": one_of("usage_weighted", "round_robin", "least_inflight"),
        "sticky_sessions": BOOLEAN,
        "prefer_earlier_reset": one_of("off", "5h", "weekly"),
        "session_placement": one_of("headroom", "rendezvous"),
        "upstream_stream_transport": one_of("auto", "http", "websocket"),
        "api_key_auth_enabled": BOOLEAN,
        "pricing_overrides": mapping(MODEL_PRICE),
        "request_log_retention_days": NUMBER,
    },
    additionalProperties=True,
)

# --- dashboard sign-in ---
ROLE = one_of("admin", "viewer")
AUTH_STATUS = record(
    {
        "mode": one_of("standard", "trusted_header", "disabled"),
        "authenticated": BOOLEAN,
        "role": nullable(ROLE),
        "user": nullable(STRING),
        "password_set": BOOLEAN,
        "totp_enabled": BOOLEAN,
        "bootstrap_required": BOOLEAN,
        "local_without_password": BOOLEAN,
        "proxy_required": BOOLEAN,
    },
    # How the caller is admitted; null: not signed in.
    {"via": nullable(one_of("session", "local", "header", "disabled"))},
)
SIGNED_IN = record({"role": ROLE})
SESSION = record(
    {
        "id": STRING,
        "role": STRING,
        "created_at": NUMBER,
        "last_seen_at": NUMBER,
        "expires_at": NUMBER,
        "client_address": nullable(STRING),
        "user_agent": nullable(STRING),
        "current": BOOLEAN,
    },
    {"user": nullable(STRING)},
)
AUDIT_EVENT = record(
    {
        "id": INTEGER,
        "at": NUMBER,
        "actor": nullable(STRING),
        "client_address": nullable(STRING),
        "action": STRING,
        "target": nullable(STRING),
        "details": nullable(mapping(ANY)),
    }
)

# --- request history ---
REQUEST_LOG = record(
    {
        "id": INTEGER,
        "request_id": STRING,
        "started_at": NUMBER,
        "route": STRING,
        "transport": STRING,
        "account_id": nullable(INTEGER),
        "api_key_id": nullable(INTEGER),
        "model": STRING,
        "reasoning_effort": STRING,
        "status": INTEGER,
        "error_code": STRING,
        "input_tokens": INTEGER,
        "cached_input_tokens": INTEGER,
        "output_tokens": INTEGER,
        "reasoning_tokens": INTEGER,
        "total_tokens": INTEGER,
        "cost_usd": nullable(NUMBER),
        "latency_ms": NUMBER,
        "ttft_ms": nullable(NUMBER),
        "attempts": INTEGER,
        "session_key_hash": STRING,
        "routing": STRING,
    },
    {"upstream_transport": STRING, "user_agent": STRING, "failovers": STRING, "egress": STRING},
)
REQUEST_LOG_DETAIL = extended(
    REQUEST_LOG,
    {"account": nullable(STRING), "api_key": nullable(STRING), "moved": BOOLEAN, "move_reason": STRING},
    {"session_turn": INTEGER},
)
PERCENTILES = record({"p50": nullable(NUMBER), "p90": nullable(NUMBER), "p99": nullable(NUMBER)})
_BASIC_TOTALS = {
    "requests": INTEGER,
    "errors": INTEGER,
    "input_tokens": INTEGER,
    "cached_input_tokens": INTEGER,
    "output_tokens": INTEGER,
    "reasoning_tokens": INTEGER,
    "total_tokens": INTEGER,
    "cost_usd": NUMBER,
    "unpriced_requests": INTEGER,
    "error_rate": NUMBER,
    "latency_avg_ms": nullable(NUMBER),
}
_TOTALS = {**_BASIC_TOTALS, "latency_ms": PERCENTILES, "ttft_ms": PERCENTILES}
USAGE_REPORT = record(
    {
        "since": NUMBER,
        "until": NUMBER,
        "bucket": one_of("hour", "day"),
        "totals": record(_TOTALS),
        "series": array(record({"t": NUMBER, **_TOTALS})),
        "errors_by_code": array(record({"code": STRING, "errors": INTEGER})),
        "by": record(
            {
                "account": array(record({"id": nullable(INTEGER), "name": STRING, **_TOTALS})),
                "key": array(record({"id": nullable(INTEGER), "name": STRING, **_TOTALS})),
                "model": array(record({"model": STRING, **_TOTALS})),
                "route": array(record({"route": STRING, **_TOTALS})),
                "transport": array(record({"transport": STRING, **_TOTALS})),
            }
        ),
        # One series per value of the split dimension (`split=`), keyed by that value.
        "split": mapping(array(record({"t": NUMBER, **_BASIC_TOTALS}))),
    }
)
SESSION_SUMMARY = record(
    {
        "session": STRING,
        "first_seen": NUMBER,
        "last_seen": NUMBER,
        "turns": INTEGER,
        "total_tokens": INTEGER,
        "accounts": INTEGER,
        "moves": INTEGER,
        "errors": INTEGER,
        "cost_usd": NUMBER,
    }
)
SESSION_MOVE = record(
    {"at": NUMBER, "log_id": INTEGER, "from_account_id": INTEGER, "to_account_id": INTEGER, "reason": STRING},
    {"from_account": nullable(STRING), "to_account": nullable(STRING)},
)
SESSION_DETAIL = record(
    {
        "session": STRING,
        "turns": array(extended(REQUEST_LOG, {}, {"account": nullable(STRING)})),
        "moves": array(SESSION_MOVE),
    }
)

# --- egress proxies ---
EGRESS_PROXY = record(
    {
        "id": INTEGER,
        "name": STRING,
        "url": STRING,
        "has_credentials": BOOLEAN,
        "username": STRING,
        "pool": STRING,
        "weight": INTEGER,
        "check": record(
            {
                "ok": BOOLEAN,
                "detail": STRING,
                "checked_at": TIME,
                "exit_address": nullable(STRING),
                "latency_ms": nullable(NUMBER),
            }
        ),
    },
    {"up": BOOLEAN, "down_reason": nullable(STRING), "accounts": array(INTEGER)},
)
PROXY_OVERVIEW = record(
    {
        "proxies": array(EGRESS_PROXY),
        "pools": array(record({"name": STRING, "proxies": array(STRING)})),
        "accounts": array(ACCOUNT_ROUTE),
    }
)
PROXY_TEST = record(
    {"proxy": STRING, "ok": BOOLEAN, "exit_address": nullable(STRING), "latency_ms": NUMBER, "detail": STRING}
)


@dataclass(frozen=True, slots=True)
class Answer:
    """A route's answer when it succeeds; no schema: an empty body."""

    status: int
    schema: Schema | None = None
    media_type: str = "application/json"


# Each route's answer when it succeeds, by handler (blueprint.function).
ANSWERS: dict[str, Answer] = {
    "api_accounts.list_accounts": Answer(200, record({"accounts": array(ACCOUNT)})),
    "api_accounts.show_account": Answer(200, extended(ACCOUNT, {"events": array(ACCOUNT_EVENT)})),
    "api_accounts.usage_history": Answer(
        200,
        record({"account_id": INTEGER, "days": NUMBER, "history": array(USAGE_POINT)}),
    ),
    "api_accounts.import_accounts": Answer(200, IMPORT_RESULT),  # 207 with the same shape: some files refused
    "api_accounts.rename_account": Answer(200, ACCOUNT),
    "api_accounts.set_routing_policy": Answer(200, ACCOUNT),
    "api_accounts.pause_account": Answer(200, ACCOUNT),
    "api_accounts.resume_account": Answer(200, ACCOUNT),
    "api_accounts.refresh_account": Answer(200, ACCOUNT),
    "api_accounts.delete_account": Answer(200, DELETED),
    "api_accounts.reauth_account": Answer(201, LOGIN_FLOW),
    "api_accounts.start_browser_login": Answer(201, LOGIN_FLOW),
    "api_accounts.start_device_login": Answer(201, LOGIN_FLOW),
    "api_accounts.complete_browser_login": Answer(200, LOGIN_FLOW),
    "api_accounts.browser_login_status": Answer(200, LOGIN_FLOW),
    "api_accounts.device_login_status": Answer(200, LOGIN_FLOW),
    "api_keys.list_keys": Answer(200, record({"api_keys": array(API_KEY)})),
    "api_keys.create_key": Answer(201, API_KEY),
    "api_keys.edit_key": Answer(200, API_KEY),
    "api_keys.regenerate_key": Answer(200, API_KEY),
    "api_settings.read_settings": Answer(200, RUNTIME_SETTINGS),
    "api_settings.read_setting_defaults": Answer(200, RUNTIME_SETTINGS),
    "api_settings.change_settings": Answer(200, RUNTIME_SETTINGS),
    "api_auth.status": Answer(200, AUTH_STATUS),
    "api_auth.login": Answer(200, SIGNED_IN),
    "api_auth.bootstrap": Answer(200, SIGNED_IN),
    "api_auth.totp_setup": Answer(200, record({"secret": STRING, "otpauth_uri": STRING, "qr_svg": STRING})),
    "api_auth.totp_enable": Answer(200, record({"recovery_codes": array(STRING)})),
    "api_auth.list_sessions": Answer(200, record({"sessions": array(SESSION)})),
    "api_audit.read_audit": Answer(
        200, record({"events": array(AUDIT_EVENT), "next_before_id": nullable(INTEGER)})
    ),
    "api_usage.list_request_logs": Answer(
        200,
        record({"request_logs": array(REQUEST_LOG), "next_cursor": nullable(STRING)}),
    ),
    "api_usage.read_request_log": Answer(200, REQUEST_LOG_DETAIL),
    "api_usage.read_usage": Answer(200, USAGE_REPORT),
    "api_usage.list_sessions": Answer(
        200,
        record({"sessions": array(SESSION_SUMMARY), "since": NUMBER, "until": NUMBER}),
    ),
    "api_usage.read_session": Answer(200, SESSION_DETAIL),
    "api_proxies.list_proxies": Answer(200, PROXY_OVERVIEW),
    "api_proxies.create_proxy": Answer(201, EGRESS_PROXY),
    "api_proxies.update_proxy": Answer(200, EGRESS_PROXY),
    "api_proxies.delete_proxy": Answer(200, DELETED),
    "api_proxies.test_proxy": Answer(200, PROXY_TEST),
    "api_proxies.bind_account": Answer(200, extended(ACCOUNT_ROUTE, {"binding": STRING})),
    "api_accounts.export_account": Answer(200, record({}, additionalProperties=True)),  # a Codex auth.json
    "api_usage.export_request_logs": Answer(200, STRING, "text/csv"),
    "api_keys.delete_key": Answer(204),
    "api_auth.logout": Answer(204),
    "api_auth.logout_all": Answer(204),
    "api_auth.change_password": Answer(204),
    "api_auth.totp_disable": Answer(204),
    "api_auth.viewer_password": Answer(204),
    "api_auth.revoke_session": Answer(204),
    # The Codex CLI's /status: the upstream's usage document for the pool, in its own shape.
    "pool_usage.codex_usage": Answer(200, record({}, additionalProperties=True)),
}
