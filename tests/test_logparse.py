"""polygen.logparse: the log line grammar of docs/polycom.md §5 and the body splitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polygen.logparse import LogLine, count_lines, iter_lines, parse_log_line, text_lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("011511.006|so   |2|00|soCoreAudioTermChg: chassis -> idle",
         LogLine("011511.006", "so", 2, 0, "soCoreAudioTermChg: chassis -> idle", True)),
        ("1101103000|sip  |4|03|Register failed | 401 | retry",
         LogLine("1101103000", "sip", 4, 3, "Register failed | 401 | retry", True)),
        ("2611011030|dhcpc|6|0|", LogLine("2611011030", "dhcpc", 6, 0, "", True)),
        ("0102030405|app1|1|12|no padding", LogLine("0102030405", "app1", 1, 12, "no padding", True)),
    ],
)
def test_parsed(line, expected):
    assert parse_log_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "plain text from a phone",
        "011511.006|so   |7|00|level out of range",
        "011511.006|so   |x|00|level not a digit",
        "011511.006|toolong|2|00|module over 5 characters",
        "011511.006|     |2|00|empty module",
        "011511.006|so   |2||missed empty",
        "011511.006|so   |2|00",  # no text field
        "ab:cd|so|2|00|time not a number",
        "|so|2|00|no time",
    ],
)
def test_unparsed_kept_whole(line):
    assert parse_log_line(line) == LogLine(None, None, None, None, line, False)


@given(st.text())
def test_never_raises(line):
    result = parse_log_line(line)
    if not result.parsed:
        assert result.text == line


_MODULE = "abcdefghijklmnopqrstuvwxyz0123456789"


@given(
    time=st.from_regex(r"\A[0-9]{6}\.[0-9]{3}\Z|\A[0-9]{10}\Z"),
    module=st.text(_MODULE, min_size=1, max_size=5),
    level=st.integers(0, 6),
    missed=st.integers(0, 999),
    text=st.text(),
)
def test_round_trip(time, module, level, missed, text):
    line = f"{time}|{module:<5}|{level}|{missed:02d}|{text}"
    assert parse_log_line(line) == LogLine(time, module, level, missed, text, True)


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"\n", []),
        (b"a\nb\n", ["a", "b"]),
        (b"a\r\nb\r\r\n", ["a", "b"]),
        (b"a\n\nb", ["a", "b"]),  # blank lines are not kept; a last line without newline is
        (b"a\n \t\r\n\n", ["a"]),  # blank: only spaces, tabs and CRs
        (b"  indented\n", ["  indented"]),
        (b"caf\xc3\xa9 \xff\xfe\n", ["caf\u00e9 \ufffd\ufffd"]),
    ],
)
def test_iter_lines(data, lines):
    assert list(iter_lines(data)) == lines


def test_text_lines_numbers_and_offsets():
    """Blank lines keep their numbers; the offsets delimit each line with its newline."""
    data = b"one\n\n  \nfour\r\nfive"
    assert list(text_lines(data)) == [(1, 0, 4, "one"), (4, 8, 14, "four"), (5, 14, 18, "five")]
    assert [n for n, *_ in text_lines(data, first_line_no=10)] == [10, 13, 14]
    assert count_lines(data) == 5 and count_lines(b"") == 0 and count_lines(b"a\n") == 1


def test_a_megabyte_of_blanks_yields_nothing():
    """Newlines or spaces by the megabyte are not lines (the flood an upload limit must not pay for)."""
    assert list(text_lines(b"\n" * (1 << 20))) == []
    assert list(text_lines(b" " * (1 << 20))) == []
    assert list(text_lines(b"\n" * 1000 + b"x")) == [(1001, 1000, 1001, "x")]


@given(st.binary())
def test_iter_lines_never_raises(data):
    for line in iter_lines(data):
        assert "\n" not in line
