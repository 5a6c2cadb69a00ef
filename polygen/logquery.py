"""What ``polygen logs`` asks of the log database: durations and ``--since`` times, MAC lists (as
typed, or the phones of some extensions from the inventory), the rows as text or JSON, and
``follow`` for ``logs --follow``."""

from __future__ import annotations

import re
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from polygen.errors import PolygenError
from polygen.logstore import BaseLogStore, Row
from polygen.safetext import json_dumps, mask, visible

__all__ = ["follow", "format_json", "format_text", "macs_for_extensions", "normalise_macs", "parse_duration",
           "parse_since"]


# ---------------------------------------------------------------------- durations and times
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])", re.ASCII)
_DURATION_FULL_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[smhdw])+", re.ASCII)


def parse_duration(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"2w"`` (or combined, ``"1h30m"``) -> seconds."""
    compact = str(text).strip().lower().replace(" ", "")
    if not _DURATION_FULL_RE.fullmatch(compact):
        raise PolygenError(
            f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 90s, 15m, 1h, 30d, 2w)"
        )
    return float(sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(compact)))


def parse_since(text: str, now: float | None = None) -> float:
    """A duration ago (``"1h"``) or a local date/time (``"2026-11-01"``, ``"2026-11-01T10:00"``) -> unix seconds.

    A date or time without an offset is local time; ISO 8601 offsets (``+01:00``, ``Z``) are honoured.
    """
    s = str(text).strip()
    if s and s[0].isdigit() and _DURATION_FULL_RE.fullmatch(s.lower().replace(" ", "")):
        return (_time.time() if now is None else now) - parse_duration(s)
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise PolygenError(
            f"invalid time {text!r}: use a duration ago (1h, 30m, 2d) or a date/time "
            "(2026-11-01, 2026-11-01T10:00)"
        ) from None
    return when.timestamp()


# ---------------------------------------------------------------------- `polygen logs` helpers
def normalise_macs(macs: Iterable[str]) -> list[str]:
    """MACs as typed (``00:04:F2:AB:CD:EF``, ``0004f2abcdef``) -> 12 lower-case hex digits."""
    result = []
    for text in macs:
        mac = re.sub(r"[\s:.\-]", "", str(text)).lower()
        if not re.fullmatch(r"[0-9a-f]{12}", mac, re.ASCII):
            raise PolygenError(f"invalid MAC address {text!r}: expected 12 hex digits, e.g. 0004f2abcdef")
        result.append(mac)
    return result


def macs_for_extensions(inventory_dir: Path, exts: Iterable[str], secrets: Path | None = None) -> dict[str, list[str]]:
    """Each of ``exts`` -> the MACs of the phones that carry it in the inventory now."""
    from polygen.inventory import load

    inventory = load(Path(inventory_dir), secrets)
    return {ext: [p.mac for p in inventory.phones if ext in p.lines] for ext in (str(e).strip() for e in exts)}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def format_text(row: Row) -> str:
    """``2026-11-29T10:41:45+00:00 0004f2abcdef app:12 L2 so    011511.006 text``.

    What the phone sent is shown with its control characters as visible escapes (a log line
    cannot clear the screen or rewrite what is above it) and its credentials masked.
    """
    level = f"L{row.level}" if row.level is not None else "- "
    return (f"{_iso(row.received_at)} {row.mac} {row.kind}:{row.line_no} {level} "
            f"{visible(row.module or '-'):<5} {visible(row.time or '-'):<10} {visible(mask(row.text))}")


def format_json(rows: Sequence[Row], indent: int | None = 2) -> str:
    """A JSON array of rows; ``received`` is ``received_at`` in ISO 8601. Control characters are
    JSON escapes (C1 and DEL too), credentials masked."""
    return json_dumps([{**r.as_dict(), "text": mask(r.text), "received": _iso(r.received_at)} for r in rows],
                      indent=indent)


FOLLOW_INTERVAL = 1.0  # seconds between polls of `polygen logs --follow`
FOLLOW_LOOKBACK = 10.0  # seconds of lines each poll looks at again


def follow(store: BaseLogStore, shown: Sequence[Row], *, since: float | None = None,
           interval: float = FOLLOW_INTERVAL, lookback: float = FOLLOW_LOOKBACK,
           sleep: Callable[[float], None] = _time.sleep, **filters) -> Iterator[Row]:
    """The lines stored from now on that match ``filters`` (``query``'s), oldest first, without
    end: ``shown`` were printed already.

    Each poll asks for the lines received in the last ``lookback`` seconds before the newest one
    seen, and yields those not yet seen. A newer id alone would miss lines: on PostgreSQL several
    writers commit, and an upload that took its ids first can become visible after one that took
    later ids."""
    seen: dict[int, float] = {r.id: r.received_at for r in shown}
    newest = max(seen.values(), default=_time.time())
    # what is already stored around the start was shown, or left out by --limit: not new
    for r in store.query(since=newest - lookback, limit=None, **filters):
        seen.setdefault(r.id, r.received_at)
    while True:
        sleep(interval)
        start = newest - lookback if since is None else max(since, newest - lookback)
        for r in store.query(since=start, limit=None, **filters):
            if r.id not in seen:
                seen[r.id] = r.received_at
                newest = max(newest, r.received_at)
                yield r
        cutoff = newest - 2 * lookback
        seen = {i: at for i, at in seen.items() if at >= cutoff}
