"""Sign-in holes of the second security round (issue 25): a burst of guesses across workers, a flood that
locked the owner out, a proxy user replacing the fallback password, a second-factor answer that confirmed
the password, and what the audit log missed or showed a viewer."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import aiohttp
import pyotp
import pytest

from server.auth import credentials as cred
from server.auth import store, throttle
from tests.support.dashboard import (
    PASSWORD,
    TRUST_LOOPBACK_PROXY,
    VIEWER_PASSWORD,
    Browser,
    first_admin,
    sign_in,
)
from tests.support.live_server import ServerProcess, serve_in_process
from tests.support.settings import make_settings
from tests.test_dashboard_processes import dashboard_cli, server_env

WRONG = "guess guess"


@pytest.fixture
async def server(tmp_path: Path, database_url: str):
    settings = make_settings(tmp_path / "data", database_url, **TRUST_LOOPBACK_PROXY)
    async with serve_in_process(settings) as live:
        yield live


async def _turn_on_totp(admin: Browser, step: int) -> pyotp.TOTP:
    """Two-factor sign-in on, spending the code of time step `step`."""
    _, setup, _ = await admin.call("POST", "/api/auth/totp/setup")
    totp = pyotp.TOTP(setup["secret"])
    assert (await admin.call("POST", "/api/auth/totp/enable", {"code": totp.at(step * 30)}))[0] == 200
    return totp


async def _burst(url: str, count: int, address: str) -> collections.Counter:
    """`count` wrong passwords at once from one address, each on a new connection (both workers answer)."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def guess() -> int:
            headers = {"X-Forwarded-For": address}
            async with http.post(
                url + "/api/auth/login", json={"password": WRONG}, headers=headers
            ) as answer:
                return answer.status

        return collections.Counter(await asyncio.gather(*(guess() for _ in range(count))))


async def _guess_until_refused(url: str, address: str) -> int:
    """Wrong passwords one after another until the server refuses: how many it checked."""
    async with Browser(url, address) as guesser:
        for checked in range(throttle.PER_ADDRESS + 1):
            code, _, _ = await sign_in(guesser, WRONG)
            if code == 429:
                return checked
            assert code == 401
    raise AssertionError("never refused")


@pytest.mark.slow
async def test_a_burst_of_wrong_passwords_on_two_workers_is_checked_at_most_the_limit(tmp_path, database_url):
    server = ServerProcess(server_env(tmp_path, database_url), workers=2).start(tmp_path / "server.log")
    try:
        await server.wait_ready()
        code, _, err = await dashboard_cli(
            server.env, "set-password", "--password-stdin", stdin=PASSWORD.encode() + b"\n"
        )
        assert code == 0, err
        for count, address in ((30, "198.51.100.66"), (75, "198.51.100.67")):
            answers = await _burst(server.url, count, address)
            assert set(answers) <= {401, 429} and answers[429] >= count - throttle.PER_ADDRESS, answers
            # What the burst left unchecked stays unchecked: the total of checks is the limit, exactly.
            assert answers[401] + await _guess_until_refused(server.url, address) == throttle.PER_ADDRESS
        for owner in ("198.51.100.10", "198.51.100.11"):  # 20 failures elsewhere lock no one else out
            async with Browser(server.url, owner) as browser:
                code, body, _ = await sign_in(browser)
                assert code == 200, body
        async with Browser(server.url, "198.51.100.10") as admin:
            assert (await sign_in(admin))[0] == 200
            _, audit, _ = await admin.call("GET", "/api/audit?action=auth.sign_in_failed&limit=500")
            checked = collections.Counter(e["client_address"] for e in audit["events"])
            assert checked == {"198.51.100.66": throttle.PER_ADDRESS, "198.51.100.67": throttle.PER_ADDRESS}
    finally:
        server.stop()


async def _fail_from(db, address: str, times: int, at: float | None = None) -> None:
    for _ in range(times):
        admission = await db.run(throttle.admit, address, time.time() if at is None else at, False)
        assert admission.admitted
        await db.run(throttle.settle, address, admission.claim, False)


async def test_a_flood_from_many_addresses_locks_out_no_address_without_failures_of_its_own(server):
    async with await first_admin(server.url) as admin:
        db = server.app.ctx.db
        for n in range(throttle.OVERALL):
            await _fail_from(db, f"192.0.2.{n}", 1)
        async with Browser(server.url, "198.51.100.99") as newcomer:
            assert (await sign_in(newcomer))[0] == 200
        async with Browser(server.url, "198.51.100.98") as typo:  # one slip is forgiven, even in a flood
            assert (await sign_in(typo, WRONG))[0] == 401
            assert (await sign_in(typo))[0] == 200
        async with Browser(server.url, "198.51.100.97") as flooder:
            await _fail_from(db, "198.51.100.97", throttle.PER_ADDRESS_IN_A_FLOOD)
            code, body, headers = await sign_in(flooder)
            assert code == 429 and body["error"]["code"] == "too_many_attempts"
            assert 0 < int(headers["Retry-After"]) <= throttle.WINDOW_S + 1
        # A signed-in admin renewing a password from a flooding address is not held back by the flood.
        await _fail_from(db, "127.0.0.1", throttle.PER_ADDRESS_IN_A_FLOOD)
        change = {"current_password": PASSWORD, "new_password": "a brand new password"}
        assert (await admin.call("POST", "/api/auth/password", change))[0] == 204


async def test_a_good_sign_in_clears_its_address_and_old_failures_are_pruned(server):
    await (await first_admin(server.url)).session.close()
    db = server.app.ctx.db
    async with Browser(server.url, "198.51.100.7") as browser:
        await _fail_from(db, "198.51.100.7", throttle.PER_ADDRESS - 1)
        assert (await sign_in(browser))[0] == 200
        await _fail_from(db, "198.51.100.7", throttle.PER_ADDRESS - 1)
        assert (await sign_in(browser, WRONG))[0] == 401  # the 10th failure since the good sign-in
        assert (await sign_in(browser))[0] == 429
    await _fail_from(db, "192.0.2.1", 1, at=time.time() - throttle.WINDOW_S - 1)
    await db.run(throttle.prune, time.time())
    assert await db.run(_attempt_rows) == {"198.51.100.7": throttle.PER_ADDRESS}


def _attempt_rows(orm_db) -> dict[str, int]:
    from pony import orm

    with orm.db_session:
        rows = orm_db.select(
            "SELECT client_address, COUNT(*) FROM dashboard_auth_failure GROUP BY client_address"
        )
        return dict(rows)


async def test_a_proxy_user_cannot_set_or_replace_a_password_without_the_current_one(tmp_path, database_url):
    settings = make_settings(
        tmp_path / "data", database_url, dashboard_auth_mode="trusted_header", **TRUST_LOOPBACK_PROXY
    )
    async with (
        serve_in_process(settings) as live,
        Browser(live.url, headers={"Remote-User": "alice"}) as alice,
    ):
        assert (await alice.status())["via"] == "header"
        for method, path, body in (
            ("POST", "/api/auth/password", {"new_password": "alice's own password"}),
            ("PUT", "/api/auth/viewer-password", {"password": "alice's viewer password"}),
        ):
            code, answer, _ = await alice.call(method, path, body)
            assert code == 403 and answer["error"]["code"] == "operator_only", path
        await live.app.ctx.db.run(store.set_admin_password, cred.hash_password(PASSWORD), None)
        await live.app.ctx.dashboard_auth.reload()
        for method, path, body in (
            ("POST", "/api/auth/password", {"new_password": "alice's own password"}),
            ("PUT", "/api/auth/viewer-password", {"password": "alice's viewer password"}),
        ):
            code, answer, _ = await alice.call(method, path, body)
            assert code == 400 and answer["error"]["param"] == "current_password", path
            code, answer, _ = await alice.call(method, path, body | {"current_password": "not it at all"})
            assert code == 401 and answer["error"]["code"] == "invalid_credentials", path
        async with Browser(live.url) as fallback:  # the operator's password still signs in
            assert (await sign_in(fallback))[0] == 200
        _, audit, _ = await alice.call("GET", "/api/audit?action=auth.password_change_failed")
        assert [e["actor"] for e in audit["events"]] == ["alice", "alice"]
        change = {"new_password": "alice's own password", "current_password": PASSWORD}
        assert (await alice.call("POST", "/api/auth/password", change))[0] == 204


async def test_with_two_factor_on_the_right_password_alone_is_answered_as_a_wrong_one(server):
    async with await first_admin(server.url) as admin:
        step = int(time.time() // 30)
        totp = await _turn_on_totp(admin, step - 1)
    async with Browser(server.url) as browser:
        assert (await browser.status())["totp_enabled"], "the sign-in page knows to ask for the code"
        right = await sign_in(browser)
        wrong = await sign_in(browser, WRONG)
        assert right[0] == wrong[0] == 401 and right[1] == wrong[1]
        assert right[1]["error"]["code"] == "invalid_credentials"
        assert (await sign_in(browser, WRONG, totp.at(step * 30)))[0] == 401
        assert (await sign_in(browser, code=totp.at(step * 30)))[0] == 200


async def test_the_audit_log_records_every_refusal_and_setup_and_only_an_admin_reads_it(server):
    async with await first_admin(server.url) as admin:
        assert (await admin.call("PUT", "/api/auth/viewer-password", {"password": VIEWER_PASSWORD}))[0] == 204
        async with Browser(server.url) as signed_in:
            assert (await sign_in(signed_in))[0] == 200
        assert (await admin.call("POST", "/api/auth/totp/setup"))[0] == 200  # started, then again
        step = int(time.time() // 30)
        totp = await _turn_on_totp(admin, step)
        near = {totp.at((step + d) * 30) for d in (-1, 0, 1)}
        wrong = next(c for c in ("123456", "654321") if c not in near)
        assert (await admin.call("POST", "/api/auth/totp/disable", {"code": wrong}))[0] == 401
        async with Browser(server.url, "198.51.100.30") as viewer:
            assert (await sign_in(viewer, VIEWER_PASSWORD))[0] == 200
            for path in ("/api/audit", "/api/auth/sessions"):
                code, body, _ = await viewer.call("GET", path)
                assert code == 403 and body["error"]["code"] == "admin_only", path
            code, body, _ = await viewer.call("PUT", "/api/settings", {"upstream_stream_transport": "http"})
            assert code == 403 and body["error"]["code"] == "read_only"
        _, body, _ = await admin.call("GET", "/api/audit?action=auth")
        events = body["events"]
        actions = [e["action"] for e in events]
        assert actions.count("auth.totp_setup_started") == 2
        assert "auth.totp_disable_failed" in actions
        sign_ins = [e for e in events if e["action"] == "auth.sign_in"]
        assert {e["actor"] for e in sign_ins} == {"admin", "viewer"}
        refused = [e for e in events if e["action"] == "auth.refused"]
        assert [(e["actor"], e["target"], e["details"]["code"]) for e in refused] == [
            ("viewer", "/api/settings", "read_only"),
            ("viewer", "/api/auth/sessions", "admin_only"),
            ("viewer", "/api/audit", "admin_only"),
        ]
