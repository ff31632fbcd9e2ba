"""`codex-lb accounts …`: the operator's commands on the same database a running server uses."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import orjson

from tests.support.live_server import ROOT
from tests.support.polling import eventually


def cli_env(proxy) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CODEX_LB_DATA_DIR": str(proxy.settings.data_dir),
        "CODEX_LB_DATABASE_URL": proxy.settings.database_url,
        "CODEX_LB_AUTH_BASE_URL": proxy.fake.auth_url,
    }


async def cli(proxy, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "accounts",
        *args,
        cwd=ROOT,
        env=cli_env(proxy),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_operator_actions_from_the_command_line(proxy, tmp_path):
    [added] = await proxy.add_accounts("acc_cli_ops", email="ops@example.com")
    number = str(added["id"])
    assert (await cli(proxy, "rename", number, "Seat A"))[0] == 0
    code, _, err = await cli(proxy, "rename", number, "Seat B\nWARNING forged")
    assert code == 2 and "control characters" in err
    code, out, _ = await cli(proxy, "pause", number)
    assert code == 0 and "paused [Seat A]" in out
    code, out, _ = await cli(proxy, "list")
    assert "paused" in out and "ops@example.com" in out and "[Seat A]" in out
    code, out, _ = await cli(proxy, "refresh", number)
    assert code == 0 and "refreshed" in out
    assert (await proxy.fake.account_stats("acc_cli_ops"))["refreshes"] == 1
    code, out, _ = await cli(proxy, "resume", number)
    assert code == 0 and "active" in out
    exported = tmp_path / "exported.json"
    exported.write_text("an older export, left readable by all")
    exported.chmod(0o644)  # overwritten, it must not keep that mode: the export holds live tokens
    code, out, _ = await cli(proxy, "export", number, "-o", str(exported))
    assert code == 0 and oct(exported.stat().st_mode & 0o777) == "0o600"
    assert orjson.loads(exported.read_bytes())["tokens"]["account_id"] == "acc_cli_ops"
    code, out, _ = await cli(proxy, "show", number)
    assert "exported auth.json" in out and "paused -> active" in out
    # The running server learns every change through the database.
    await eventually(
        proxy.accounts, lambda accounts: accounts[0]["label"] == "Seat A", timeout=10, interval=0.1
    )
    code, out, _ = await cli(proxy, "delete", number)
    assert code == 0 and "deleted account" in out
    assert (await cli(proxy, "show", number))[:2] == (1, "")


async def test_device_code_login_from_the_command_line(proxy):
    await proxy.fake.configure(device_interval_s=0)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "accounts",
        "login",
        cwd=ROOT,
        env=cli_env(proxy),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith(f"Open {proxy.fake.auth_url}/codex/device and enter the code ")
    user_code = re.search(r"code (\S+)", line).group(1)
    assert await proxy.fake.approve_device(user_code, account="acc_cli_device")
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(err.decode()[-3000:]) from None
    assert process.returncode == 0, err
    assert "signed in: account" in out.decode()
    assert [a["chatgpt_account_id"] for a in await proxy.accounts()] == ["acc_cli_device"]


async def test_show_prints_local_times_with_countdowns_and_json_for_scripts(proxy):
    [added] = await proxy.add_accounts("acc_cli_show", email="show@example.com")
    number = str(added["id"])
    code, out, _ = await cli(proxy, "show", number)
    assert code == 0
    assert out.splitlines()[0] == f"account {number}"
    iso = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d"
    assert re.search(rf"\n  status +active since {iso} \((\d+ s ago|now)\)\n", out), out
    assert re.search(rf"  token expires +{iso} \(in \d+ d\)", out)
    code, out, _ = await cli(proxy, "show", number, "--json")
    shown = orjson.loads(out)
    assert shown["email"] == "show@example.com" and isinstance(shown["created_at"], float)
    code, out, _ = await cli(proxy, "list", "--json")
    assert [a["id"] for a in orjson.loads(out)["accounts"]] == [added["id"]]


def test_usage_reads_as_percentages_with_reset_countdowns():
    from server.accounts import report

    now = 1_800_000_000.0
    usage = {
        "primary": {"used_percent": 42.4, "window_minutes": 300, "reset_at": now + 2 * 3600},
        "secondary": {"used_percent": 10.0, "window_minutes": 10080, "reset_at": now + 5 * 86400},
        "credits": {"has_credits": False, "unlimited": False, "balance": None},
    }
    assert report.window_line(usage["primary"], now).endswith("(in 2 h)")
    assert report.window_line(usage["primary"], now).startswith("42% used, resets ")
    assert report.usage_brief(usage) == "5 h 42% · weekly 10%"
    assert report.usage_brief(None) == "usage not polled yet"
    assert [report.relative(s) for s in (0.2, 30, -300, 7200, -3 * 86400)] == [
        "now",
        "in 30 s",
        "5 min ago",
        "in 2 h",
        "3 d ago",
    ]
