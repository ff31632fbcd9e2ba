"""Calendar windows in UTC: a limit counts usage from the start of the current minute, hour, day,
ISO week (Monday 00:00) or month (the 1st, 00:00), and resets at the start of the next one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

WINDOWS = ("minute", "hour", "day", "week", "month")


def bounds(window: str, now: float) -> tuple[int, int]:
    """(start, end) epoch seconds of the calendar window containing `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    if window == "minute":
        start = moment.replace(second=0, microsecond=0)
        end = start + timedelta(minutes=1)
    elif window == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif window == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif window == "week":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=moment.weekday())
        end = start + timedelta(days=7)
    elif window == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    else:
        raise ValueError(f"unknown window {window!r}")
    return int(start.timestamp()), int(end.timestamp())


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
