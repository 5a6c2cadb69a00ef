"""Parse the lines of the log files phones upload (FACTS.md §5).

A line is ``time|module|level|missed|text``:

* ``time``: digits with an optional fraction, in whichever ``log.render.type`` format the phone
  uses (``011511.006``, ``2611011030``, ``1101103000``); kept as written;
* ``module``: the component id, 1-5 characters, space padded (the padding is stripped);
* ``level``: the event class, a single digit 0 (debug) .. 6 (fatal);
* ``missed``: events missed under CPU load, 1-18 digits;
* ``text``: everything after the fourth ``|``, which may contain ``|`` itself.

A line that does not fit is kept whole with ``parsed=False``: nothing a phone sends is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["LogLine", "iter_lines", "parse_log_line"]

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


def iter_lines(data: bytes) -> Iterator[str]:
    """Decode an uploaded body (invalid UTF-8 becomes U+FFFD) and yield its lines.

    Lines end at ``\\n``; a trailing ``\\r`` is removed. Only the empty piece after a final newline is
    skipped, so blank lines inside the body are kept (and counted).
    """
    pieces = data.decode("utf-8", errors="replace").split("\n")
    if pieces[-1] == "":
        pieces.pop()
    for piece in pieces:
        yield piece.rstrip("\r")
