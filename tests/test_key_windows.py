"""Limit windows are calendar windows in UTC; each rule reserves in the window `now` falls in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.keys.windows import bounds, iso


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        ("minute", "2026-11-25T17:23:45.5", "2026-11-25T17:23:00", "2026-11-25T17:24:00"),
        ("hour", "2026-11-25T17:23:45", "2026-11-25T17:00:00", "2026-11-25T18:00:00"),
        ("day", "2026-11-25T17:23:45", "2026-11-25T00:00:00", "2026-11-26T00:00:00"),
        # 2026-11-25 is a Wednesday: ISO weeks start on Monday.
        ("week", "2026-11-25T17:23:45", "2026-11-23T00:00:00", "2026-11-30T00:00:00"),
        ("month", "2026-11-25T17:23:45", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        ("month", "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("day", "2026-11-25T00:00:00", "2026-11-25T00:00:00", "2026-11-26T00:00:00"),
    ],
)
def test_calendar_bounds(window, now, start, end):
    assert bounds(window, _at(now)) == (int(_at(start)), int(_at(end)))


def test_unknown_window_is_refused():
    with pytest.raises(ValueError):
        bounds("fortnight", 0.0)


def test_iso_is_utc_with_z():
    assert iso(_at("2026-11-26T00:00:00")) == "2026-11-26T00:00:00Z"
