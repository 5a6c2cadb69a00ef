"""polygen.logquery: the durations and times of `polygen logs` (the listing itself: tests/test_logs_cli.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from polygen.errors import PolygenError
from polygen.logquery import parse_duration, parse_since


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("30d", 30 * 86400), ("2w", 14 * 86400),
     ("1h30m", 5400), (" 2D ", 2 * 86400), ("1.5h", 5400)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1h", "1y", "1h x", "one hour"])
def test_parse_duration_invalid(text):
    with pytest.raises(PolygenError, match=r"invalid duration .*: use a number and a unit s, m, h, d or w"):
        parse_duration(text)


def test_parse_since():
    assert parse_since("1h", now=10_000.0) == 10_000.0 - 3600
    assert parse_since("2026-11-01") == datetime(2026, 11, 1).timestamp()
    assert parse_since("2026-11-01T10:00") == datetime(2026, 11, 1, 10, 0).timestamp()
    assert parse_since("2026-11-01T10:00+00:00") == 1793527200.0


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "1y"])
def test_parse_since_invalid(text):
    with pytest.raises(PolygenError, match="invalid time .*: use a duration ago"):
        parse_since(text)
