"""Parse the lines of the log files phones upload (docs/polycom.md §5).

A line is ``time|module|level|missed|text``:

* ``time``: digits with an optional fraction, in whichever ``log.render.type`` format the phone
  uses (``011511.006``, ``2611011030``, ``1101103000``); kept as written;
* ``module``: the component id, 1-5 characters, space padded (the padding is stripped);
* ``level``: the event class, a single digit 0 (debug) .. 6 (fatal);
* ``missed``: events missed under CPU load, 1-18 digits;
* ``text``: everything after the fourth ``|``, which may contain ``|`` itself.

A line that does not fit is kept whole with ``parsed=False``. Blank lines carry nothing and are
not stored (they still count in the line numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["LogLine", "count_lines", "iter_lines", "parse_log_line", "text_lines"]

_LINE_RE = re.compile(
    r"(?P<time>[0-9]+(?:\.[0-9]+)?)"
    r"\|[ ]*(?P<module>[A-Za-z0-9_.\-]{1,5})[ ]*"
    r"\|(?P<level>[0-6])"
    r"\|(?P<missed>[0-9]{1,18})"  # a count; longer would not fit the databases' 64-bit integers
    r"\|(?P<text>.*)",
    re.ASCII | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class LogLine:
    time: str | None
    module: str | None
    level: int | None
    missed: int | None
    text: str
    parsed: bool


def parse_log_line(line: str) -> LogLine:
    """Split one log line into its fields; an unparseable line comes back whole, ``parsed=False``."""
    m = _LINE_RE.fullmatch(line)
    if m is None:
        return LogLine(time=None, module=None, level=None, missed=None, text=line, parsed=False)
    return LogLine(
        time=m["time"],
        module=m["module"],
        level=int(m["level"]),
        missed=int(m["missed"]),
        text=m["text"],
        parsed=True,
    )


# A line with something other than blanks in it. Anchored at line starts (MULTILINE ``^``), so a
# search never retries inside a line: a megabyte of newlines or of spaces is one linear C scan.
_TEXT_LINE_RE = re.compile(rb"^[ \t\r\f\v]*[^ \t\r\f\v\n][^\n]*", re.MULTILINE)


def text_lines(data: bytes, first_line_no: int = 1) -> Iterator[tuple[int, int, int, str]]:
    """``(line_no, start, end, text)`` for each line of an uploaded body that is not blank.

    Lines end at ``\\n``; trailing ``\\r`` are removed; invalid UTF-8 becomes U+FFFD. Blank lines
    (empty, or only spaces, tabs and CRs) are skipped but counted, so ``line_no`` is the line's
    number in the body (from ``first_line_no``). ``start`` is the byte offset where the line
    begins, ``end`` the offset just past its newline (or the end of the body).
    """
    line_no, pos = first_line_no, 0
    size = len(data)
    for m in _TEXT_LINE_RE.finditer(data):
        start, stop = m.span()
        line_no += data.count(b"\n", pos, start)
        pos = start
        yield line_no, start, min(stop + 1, size), m.group().decode("utf-8", "replace").rstrip("\r")


def count_lines(data: bytes) -> int:
    """Lines in a body: one per newline, plus a last line without one."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def iter_lines(data: bytes) -> Iterator[str]:
    """The text of each line of an uploaded body that is not blank (see ``text_lines``)."""
    for _, _, _, text in text_lines(data):
        yield text
