"""Keeping accounts healthy and operable: refresh (rotation, reuse, before expiry), usage polling and
every state transition it drives, operator actions, export, deletion, and tokens encrypted at rest."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from server.accounts import store
from server.accounts.poll_schedule import PollSchedule
from server.balancer.slots import Field
from server.settings.database_url import sqlite_path
from tests.support.polling import eventually
from tests.support.proxy import codex_body, proxy_settings, serve_proxy


async def api(proxy, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, proxy.url + path, json=body) as response:
            return response.status, await response.json()


def ctx_of(proxy):
    return proxy.server.app.ctx.proxy


async def account(proxy, account_id: int) -> dict:
    status, body = await api(proxy, "GET", f"/api/accounts/{account_id}")
    assert status == 200, body
    return body


# -- refresh ---------------------------------------------------------------------------------------


async def test_refresh_now_rotates_the_tokens(proxy):
    [added] = await proxy.add_accounts("acc_rot")
    status, body = await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")
    assert status == 200 and body["status"] == "active"
    status, _ = await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")
    assert status == 200
    stats = await proxy.fake.account_stats("acc_rot")
    assert stats["refreshes"] == 2 and stats["refresh_reused"] == 0  # each used the rotated token
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status == 200


async def test_a_reused_refresh_token_needs_reauthentication_and_is_not_retried(proxy):
    auth = await proxy.fake.create_account("acc_reused")
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(auth), filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            [added] = (await response.json())["imported"]
        # Someone else (the Codex CLI on the laptop) spends the refresh token first.
        body = {
            "grant_type": "refresh_token",
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "refresh_token": auth["tokens"]["refresh_token"],
        }
        async with session.post(proxy.fake.auth_url + "/oauth/token", json=body) as response:
            assert response.status == 200
    status, body = await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")
    assert status == 409 and "refresh_token_reused" in body["error"]["message"]
    shown = await account(proxy, added["id"])
    assert shown["status"] == "reauth_required" and "refresh_token_reused" in shown["status_reason"]
    assert shown["events"][0]["to"] == "reauth_required"
    attempts = (await proxy.fake.account_stats("acc_reused"))["refresh_attempts"]
    # Neither the refresh-ahead job nor the usage poller touches it again.
    await ctx_of(proxy).upkeep.refresh_expiring()
    await ctx_of(proxy).upkeep.poll_usage()
    assert (await proxy.fake.account_stats("acc_reused"))["refresh_attempts"] == attempts
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status != 200


async def test_invalid_grant_needs_reauthentication(proxy):
    [added] = await proxy.add_accounts("acc_gone", refresh_error="invalid_grant")
    status, _ = await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")
    assert status == 409
    assert (await account(proxy, added["id"]))["status"] == "reauth_required"


async def test_a_transient_refresh_failure_keeps_the_account_active(proxy):
    [added] = await proxy.add_accounts("acc_blip", refresh_error="server_error")
    status, _ = await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")
    assert status == 502
    assert (await account(proxy, added["id"]))["status"] == "active"


async def test_tokens_close_to_expiry_are_refreshed_by_the_job(proxy):
    [soon] = await proxy.add_accounts("acc_soon", access_ttl_s=600)
    [later] = await proxy.add_accounts("acc_later")
    before = (await account(proxy, soon["id"]))["access_expires_at"]
    await ctx_of(proxy).upkeep.refresh_expiring()  # refresh ahead of 1 h by default
    assert (await proxy.fake.account_stats("acc_soon"))["refreshes"] == 1
    assert (await proxy.fake.account_stats("acc_later")).get("refreshes", 0) == 0
    assert (await account(proxy, soon["id"]))["access_expires_at"] > before
    assert later["status"] == "active"


@pytest.fixture
async def fast_proxy(tmp_path, database_url, fake_upstream):
    """The proxy with its background jobs on a sub-second cadence."""
    settings = proxy_settings(
        tmp_path,
        database_url,
        fake_upstream,
        usage_poll_interval_seconds="0.3",
        token_refresh_check_seconds="0.3",
    )
    async with serve_proxy(settings, fake_upstream) as proxy:
        yield proxy


async def test_background_jobs_poll_usage_and_refresh_without_being_asked(fast_proxy):
    [added] = await fast_proxy.add_accounts("acc_auto", access_ttl_s=600)
    await fast_proxy.fake.consume("acc_auto", 2_500_000)

    async def polled():
        shown = await account(fast_proxy, added["id"])
        return shown if shown["usage"] else None

    shown = await eventually(polled, timeout=10)
    assert shown["usage"]["primary"]["used_percent"] == 25.0
    assert shown["usage"]["primary"]["window_minutes"] == 300
    await eventually(
        lambda: fast_proxy.fake.account_stats("acc_auto"),
        lambda stats: stats.get("refreshes", 0) >= 1,
        timeout=10,
    )


# -- usage polling and states ----------------------------------------------------------------------


async def test_usage_poll_feeds_the_balancer_the_api_and_the_history(proxy):
    [added] = await proxy.add_accounts("acc_poll", credits_balance="12.5")
    await proxy.fake.consume("acc_poll", 4_000_000)
    await ctx_of(proxy).upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["usage"]["primary"]["used_percent"] == 40.0
    assert shown["usage"]["secondary"]["window_minutes"] == 10080
    assert shown["usage"]["credits"]["balance"] == 12.5
    assert shown["live"]["primary_used_percent"] == 40.0
    assert shown["usage_polled_at"] <= time.time()
    request = (await proxy.fake.requests(path="/backend-api/wham/usage"))[-1]
    assert request["headers"]["chatgpt-account-id"] == "acc_poll"
    await proxy.fake.consume("acc_poll", 1_000_000)
    await ctx_of(proxy).upkeep.poll_usage()
    assert (await account(proxy, added["id"]))["usage"]["primary"]["used_percent"] == 50.0
    status, history = await api(proxy, "GET", f"/api/accounts/{added['id']}/usage-history")
    # The latest poll is always stored; history keeps one point per few minutes.
    assert status == 200 and [row["primary_used"] for row in history["history"]] == [40.0]


async def test_accounts_polled_together_each_keep_their_own_history_spacing(proxy):
    [first] = await proxy.add_accounts("acc_spaced_a")
    await ctx_of(proxy).upkeep.poll_usage()
    [second] = await proxy.add_accounts("acc_spaced_b")
    await proxy.fake.consume("acc_spaced_b", 2_000_000)
    await ctx_of(proxy).upkeep.poll_usage()  # one tick stores both answers
    histories = [
        (await api(proxy, "GET", f"/api/accounts/{a['id']}/usage-history"))[1]["history"]
        for a in (first, second)
    ]
    assert [[row["primary_used"] for row in history] for history in histories] == [[0.0], [20.0]]
    assert (await account(proxy, second["id"]))["usage"]["primary"]["used_percent"] == 20.0


async def test_a_tick_of_many_answers_stores_each_accounts_own_usage_history_and_plan(proxy):
    # Seven answers are written in runs of 4, 2 and 1 rows: each row must land on its own account.
    names = [f"acc_tick_{n}" for n in range(7)]
    added = await proxy.add_accounts(*names)
    for n, name in enumerate(names):
        await proxy.fake.consume(name, n * 1_000_000)
    await proxy.fake.configure_account("acc_tick_5", plan_type="pro")
    await ctx_of(proxy).upkeep.poll_usage()  # one tick stores every answer
    for n, shown in enumerate(added):
        page = await account(proxy, shown["id"])
        assert page["usage"]["primary"]["used_percent"] == n * 10.0
        assert page["plan_type"] == ("pro" if n == 5 else "plus")
        history = (await api(proxy, "GET", f"/api/accounts/{shown['id']}/usage-history"))[1]["history"]
        assert [row["primary_used"] for row in history] == [n * 10.0]


async def test_the_poll_job_asks_an_unchanging_account_less_often_until_its_usage_moves(proxy):
    [added] = await proxy.add_accounts("acc_steady")
    upkeep = ctx_of(proxy).upkeep
    upkeep.schedule = PollSchedule(0.0)  # every account due at every tick
    for _ in range(3):
        await upkeep.poll_due()
    assert upkeep.schedule.backoff(added["id"]) == 4  # the same answer twice over: 1, 2, 4 intervals
    await proxy.fake.consume("acc_steady", 1_000_000)
    await upkeep.poll_due()
    assert upkeep.schedule.backoff(added["id"]) == 1
    assert (await account(proxy, added["id"]))["usage"]["primary"]["used_percent"] == 10.0


async def test_full_primary_window_rate_limits_until_the_poll_shows_room(proxy):
    [added] = await proxy.add_accounts("acc_burst")
    await proxy.fake.configure_account("acc_burst", primary_budget_tokens=0)
    await ctx_of(proxy).upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["status"] == "rate_limited" and shown["status_until"] > time.time()
    assert shown["events"][0]["reason"] == "usage poll: primary window at 100%"
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status == 429
    ctx_of(proxy).slots.set(added["slot"], Field.COOLDOWN_UNTIL, time.time() + 600)
    await proxy.fake.configure_account("acc_burst", primary_budget_tokens=10_000_000)
    await ctx_of(proxy).upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["status"] == "active" and shown["events"][0]["reason"] == "usage poll shows room"
    assert shown["live"]["cooldown_until"] is None  # usable again: the cooldown is lifted
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status == 200


async def test_full_weekly_window_is_quota_exceeded_unless_credits_lift_it(proxy):
    [spent, funded] = await proxy.add_accounts("acc_week", "acc_funded")
    await proxy.fake.configure_account("acc_week", secondary_budget_tokens=0)
    await proxy.fake.configure_account("acc_funded", secondary_budget_tokens=0, credits_has_credits=True)
    await ctx_of(proxy).upkeep.poll_usage()
    assert (await account(proxy, spent["id"]))["status"] == "quota_exceeded"
    assert (await account(proxy, funded["id"]))["status"] == "active"


async def test_quota_exceeded_returns_to_active_when_its_reset_passes(proxy):
    [added] = await proxy.add_accounts("acc_reset")
    ctx = ctx_of(proxy)
    await ctx.db.run(store.set_status, added["id"], "quota_exceeded", "usage_limit_reached", time.time() - 1)
    await ctx.upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["status"] == "active"
    assert [e["to"] for e in shown["events"][:2]] == ["active", "quota_exceeded"]
    assert "reset time passed" in shown["events"][0]["reason"]


async def test_usage_poll_marks_a_deactivated_account(proxy):
    [added] = await proxy.add_accounts("acc_banned")
    await proxy.fake.configure_account("acc_banned", deactivated=True)
    await ctx_of(proxy).upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["status"] == "deactivated" and "usage poll" in shown["status_reason"]
    before = len(await proxy.fake.requests(path="/backend-api/wham/usage"))
    await ctx_of(proxy).upkeep.poll_usage()
    assert len(await proxy.fake.requests(path="/backend-api/wham/usage")) == before  # not polled any more


async def test_usage_poll_refreshes_an_expired_token_and_retries_once(proxy):
    [added] = await proxy.add_accounts("acc_expired")
    await proxy.fake.expire_tokens("acc_expired")
    await ctx_of(proxy).upkeep.poll_usage()
    shown = await account(proxy, added["id"])
    assert shown["status"] == "active" and shown["usage"] is not None
    assert (await proxy.fake.account_stats("acc_expired"))["refreshes"] == 1


async def test_usage_poll_with_a_dead_login_needs_reauthentication(proxy):
    [added] = await proxy.add_accounts("acc_dead", refresh_error="refresh_token_invalidated")
    await proxy.fake.expire_tokens("acc_dead")
    await ctx_of(proxy).upkeep.poll_usage()
    assert (await account(proxy, added["id"]))["status"] == "reauth_required"


async def test_usage_history_older_than_28_days_is_pruned(proxy):
    [added] = await proxy.add_accounts("acc_old")
    ctx = ctx_of(proxy)
    await ctx.upkeep.poll_usage()
    old = store.UsageRow(1.0, 300, None, None, None, None, None)
    await ctx.db.run(_insert_usage, added["id"], time.time() - 29 * 86400, old)
    await ctx.upkeep.prune_history()
    rows = await ctx.db.run(store.usage_history, added["id"], 0.0)
    assert len(rows) == 1 and rows[0]["at"] > time.time() - 60


def _insert_usage(db, account_id: int, at: float, row: store.UsageRow) -> None:
    from pony import orm

    with orm.db_session:
        db.AccountUsage(
            account_id=account_id, at=at, **{k: getattr(row, k) for k in store.UsageRow.__slots__}
        )


# -- operator actions ------------------------------------------------------------------------------


async def test_pause_resume_and_rename_are_recorded(proxy):
    [added] = await proxy.add_accounts("acc_ops")
    status, body = await api(proxy, "POST", f"/api/accounts/{added['id']}/pause")
    assert status == 200 and body["status"] == "paused"
    [listed] = await proxy.accounts()
    assert listed["status"] == "paused" and time.time() - 30 < listed["status_since"] <= time.time()
    assert body["status_since"] == listed["status_since"]
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status != 200
    before = len(await proxy.fake.requests(path="/backend-api/wham/usage"))
    await ctx_of(proxy).upkeep.poll_usage()
    assert len(await proxy.fake.requests(path="/backend-api/wham/usage")) == before  # paused: not polled
    status, body = await api(proxy, "POST", f"/api/accounts/{added['id']}/resume")
    assert status == 200 and body["status"] == "active"
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status == 200
    status, body = await api(proxy, "PATCH", f"/api/accounts/{added['id']}", {"label": "  Team seat 1 "})
    assert status == 200 and body["label"] == "Team seat 1"
    shown = await account(proxy, added["id"])
    assert [(e["kind"], e["to"]) for e in shown["events"]] == [
        ("audit", "active"),
        ("state", "active"),
        ("state", "paused"),
        ("state", "active"),
    ]
    assert [a["label"] for a in await proxy.accounts()] == ["Team seat 1"]


@pytest.mark.parametrize("body", [{}, {"label": 5}, {"label": "x" * 101}])
async def test_bad_labels_are_refused(proxy, body):
    [added] = await proxy.add_accounts("acc_label")
    status, answer = await api(proxy, "PATCH", f"/api/accounts/{added['id']}", body)
    assert status == 400 and "label" in answer["error"]["message"]


async def test_actions_on_unknown_accounts_are_404(proxy):
    for method, path in [
        ("GET", "/api/accounts/77"),
        ("POST", "/api/accounts/77/pause"),
        ("POST", "/api/accounts/77/resume"),
        ("POST", "/api/accounts/77/refresh"),
        ("DELETE", "/api/accounts/77"),
        ("GET", "/api/accounts/77/export"),
    ]:
        status, body = await api(proxy, method, path)
        assert status == 404 and body["error"]["code"] == "not_found", (method, path)


async def test_export_gives_back_a_working_auth_json_and_is_audited(proxy, tmp_path):
    [added] = await proxy.add_accounts("acc_export", email="owner@example.com")
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url + f"/api/accounts/{added['id']}/export") as response:
            assert response.status == 200
            assert "attachment" in response.headers["content-disposition"]
            exported = await response.json()
    assert exported["OPENAI_API_KEY"] is None and exported["tokens"]["account_id"] == "acc_export"
    assert set(exported["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
    shown = await account(proxy, added["id"])
    assert shown["events"][0]["kind"] == "audit" and "exported" in shown["events"][0]["reason"]
    # The file imports back (the same account, updated).
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(exported), filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            assert (await response.json())["imported"][0]["created"] is False


async def test_delete_removes_the_account_and_its_secrets_but_logs_keep_an_anonymous_id(proxy):
    [keep, gone] = await proxy.add_accounts("acc_keep", "acc_delete")
    await api(proxy, "POST", f"/api/accounts/{keep['id']}/pause")
    assert (await proxy.post("/backend-api/codex/responses", codex_body())).status == 200
    [log] = await proxy.request_logs(1)
    assert log["account_id"] == gone["id"]
    status, body = await api(proxy, "DELETE", f"/api/accounts/{gone['id']}")
    assert status == 200 and body == {"deleted": gone["id"]}
    assert [a["chatgpt_account_id"] for a in await proxy.accounts()] == ["acc_keep"]
    [log] = await proxy.request_logs(1)
    assert log["account_id"] == gone["id"]  # ids are never reused, and no longer lead to anyone
    ctx = ctx_of(proxy)
    assert await ctx.db.run(store.account_events, gone["id"]) == []
    assert ctx.slots.get(gone["slot"], Field.REQUESTS) == 0.0
    # A new account may take the slot and starts clean.
    [again] = await proxy.add_accounts("acc_new")
    assert again["id"] != gone["id"]


# -- import ----------------------------------------------------------------------------------------


async def test_a_malformed_file_alone_stores_nothing(proxy):
    form = aiohttp.FormData()
    form.add_field("auth_json", b'{"tokens": {"access_token": "x"}}', filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            assert response.status == 400
            body = await response.json()
    assert body["imported"] == [] and '"tokens.refresh_token" is missing' in body["errors"][0]["error"]
    assert await proxy.accounts() == []


# -- encryption at rest ----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_database_file_holds_no_token_in_clear(proxy):
    auth = await proxy.fake.create_account("acc_clear")
    form = aiohttp.FormData()
    form.add_field("auth_json", orjson.dumps(auth), filename="auth.json")
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy.url + "/api/accounts/import", data=form) as response:
            [added] = (await response.json())["imported"]
    await api(proxy, "POST", f"/api/accounts/{added['id']}/refresh")  # rotated tokens too
    ctx = ctx_of(proxy)
    current = await ctx.db.run(store.read_tokens, added["id"], proxy.server.app.ctx.secretbox)
    _, started = await api(proxy, "POST", "/api/accounts/oauth/start")  # and a pending code verifier
    database = sqlite_path(proxy.settings.database_url)
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert len(raw) > 10_000
    secrets = [
        auth["tokens"]["access_token"],
        auth["tokens"]["refresh_token"],
        auth["tokens"]["id_token"],
        current.access_token,
        current.refresh_token,
    ]
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret.split(".")[-1].encode() not in raw  # not even a JWT signature part
    assert b"acc_clear" in raw  # the file is readable: the search would find plaintext


def test_poll_decisions_without_reset_times_fall_back_to_a_window():
    from server.accounts.upkeep import decide_status
    from server.upstream.ratelimits import RateLimitSnapshot, UsageWindow

    now = 1_800_000_000.0
    spent = RateLimitSnapshot(UsageWindow(100.0, 300, None), None, None, None, None, None)
    assert decide_status(spent, now)("active", 0.0) == (
        "rate_limited",
        "usage poll: primary window at 100%",
        now + 300 * 60,
    )
    bare = RateLimitSnapshot(UsageWindow(100.0, None, None), None, None, None, None, None)
    assert decide_status(bare, now)("active", 0.0)[2] == now + 300.0
    weekly = RateLimitSnapshot(
        UsageWindow(10.0, 300, None), UsageWindow(100.0, 10080, None), None, None, None, None
    )
    assert decide_status(weekly, now)("active", 0.0)[0] == "quota_exceeded"
    assert decide_status(weekly, now)("paused", 0.0) is None  # a person's decision stands
    room = RateLimitSnapshot(UsageWindow(10.0, 300, None), None, None, None, None, None)
    assert decide_status(room, now)("active", 0.0) is None
    assert decide_status(room, now)("quota_exceeded", now + 60)[0] == "active"


async def test_a_usage_endpoint_that_keeps_refusing_is_left_alone_for_a_while(proxy):
    [added] = await proxy.add_accounts("acc_refused", auth_error="token_invalidated")
    await ctx_of(proxy).upkeep.poll_usage()
    stats = await proxy.fake.account_stats("acc_refused")
    assert stats["refreshes"] == 1  # refreshed once, refused again
    polled = len(await proxy.fake.requests(path="/backend-api/wham/usage"))
    await ctx_of(proxy).upkeep.poll_usage()
    assert len(await proxy.fake.requests(path="/backend-api/wham/usage")) == polled
    assert (await proxy.fake.account_stats("acc_refused"))["refreshes"] == 1
    assert (await account(proxy, added["id"]))["status"] == "active"  # not its fault as far as we know
