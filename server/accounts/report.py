"""Accounts as an operator reads them in a terminal: local ISO times with "in 2 h" countdowns, window
usage as percentages with reset times. Pure functions of the API's plain dicts and the current time."""

from __future__ import annotations

from datetime import datetime


def local_time(ts: float | None, now: float) -> str:
    """`2026-12-01 17:05:03+01:00 (in 2 h)`; `-` when there is no time."""
    if not ts:
        return "-"
    stamp = datetime.fromtimestamp(ts).astimezone().isoformat(sep=" ", timespec="seconds")
    return f"{stamp} ({relative(ts - now)})"


def relative(seconds: float) -> str:
    """`in 2 h`, `5 min ago`, `now`: rounded to the unit a person thinks in at that distance."""
    size = abs(seconds)
    if size < 1:
        return "now"
    if size < 90:
        amount = f"{round(size)} s"
    elif size < 90 * 60:
        amount = f"{round(size / 60)} min"
    elif size < 48 * 3600:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def window_name(minutes: int | None) -> str:
    if not minutes:
        return "window"
    if minutes == 10080:
        return "weekly window"
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d window"
    if minutes % 60 == 0:
        return f"{minutes // 60} h window"
    return f"{minutes} min window"


def window_line(window: dict | None, now: float) -> str | None:
    if not window or window.get("used_percent") is None:
        return None
    text = f"{window['used_percent']:.0f}% used"
    if window.get("reset_at"):
        text += f", resets {local_time(window['reset_at'], now)}"
    return text


def usage_brief(usage: dict | None) -> str:
    """`5 h 42% · weekly 10%` for the list view; `usage not polled yet` before the first poll."""
    if not usage:
        return "usage not polled yet"
    parts = []
    for key in ("primary", "secondary"):
        window = usage.get(key)
        if window and window.get("used_percent") is not None:
            name = window_name(window.get("window_minutes")).removesuffix(" window")
            parts.append(f"{name} {window['used_percent']:.0f}%")
    return " · ".join(parts) or "no usage windows"


def credits_line(usage: dict | None) -> str | None:
    credits = (usage or {}).get("credits") or {}
    if credits.get("unlimited"):
        return "unlimited"
    if credits.get("balance") is not None:
        return f"balance {credits['balance']:g}"
    if credits.get("has_credits") is not None:
        return "yes" if credits["has_credits"] else "none"
    return None


def list_line(account: dict) -> str:
    who = account["email"] or account["chatgpt_account_id"]
    label = f"  [{account['label']}]" if account["label"] else ""
    plan = account["plan_type"] or "unknown"
    usage = usage_brief(account["usage"])
    policy = policy_brief(account)
    policy = f"  ({policy})" if policy else ""
    return f"{account['id']:>4}  {account['status']:<16} {plan:<10} {who}{label}  {usage}{policy}"


def policy_brief(account: dict) -> str | None:
    """`burn_first`, `preserve 20%`; None for the normal policy."""
    policy = account.get("routing_policy") or "normal"
    if policy == "normal":
        return None
    if policy == "preserve":
        return f"preserve {account.get('reserve_percent', 0):g}%"
    return policy


def show_lines(account: dict, events: list[dict], now: float) -> list[str]:
    """The whole account, one fact a line, then its state history (newest first)."""
    usage = account.get("usage") or {}
    rows: list[tuple[str, str | None]] = [
        ("chatgpt account", account["chatgpt_account_id"]),
        ("email", account["email"] or "-"),
        ("label", account["label"] or None),
        ("plan", account["plan_type"] or "unknown"),
        ("status", f"{account['status']} since {local_time(account['status_since'], now)}"),
        ("reason", account["status_reason"] or None),
        ("until", local_time(account["status_until"], now) if account["status_until"] else None),
        ("routing policy", policy_brief(account)),
    ]
    for key in ("primary", "secondary"):
        window = usage.get(key)
        if window:
            rows.append((window_name(window.get("window_minutes")), window_line(window, now)))
    rows += [
        ("credits", credits_line(usage)),
        ("usage polled", local_time(account["usage_polled_at"], now) if account["usage_polled_at"] else None),
        ("token expires", local_time(account["access_expires_at"], now)),
        ("last refresh", local_time(account["last_refresh_at"], now)),
        ("added", local_time(account["created_at"], now)),
        ("slot", str(account["slot"])),
    ]
    lines = [f"account {account['id']}"]
    lines += [f"  {name:<16} {value}" for name, value in rows if value is not None]
    if events:
        lines.append("history:")
        for event in events:
            stamp = datetime.fromtimestamp(event["at"]).astimezone().isoformat(sep=" ", timespec="seconds")
            change = f"{event['from'] or '-'} -> {event['to']}"
            lines.append(f"  {stamp}  {event['kind']:<5} {change}  {event['reason']}".rstrip())
    return lines
