"""IANA time zone -> Polycom ``tcpIpApp.sntp.*`` values.

Phones take a standard offset in seconds plus one yearly DST rule (docs/polycom.md §3): month, an
occurrence of a weekday (date 1/8/15/22 = 1st..4th, or lastInMonth) or a fixed date, and the hour.
We read the transitions of two consecutive years from the system's tz database and derive the
rule that explains both, so the output does not depend on which of those years the build ran in.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@dataclass(frozen=True)
class DstPoint:
    month: int
    date: int  # 1/8/15/22 for an occurrence, or the day of month when fixed
    time: int  # local hour 0-23
    day_of_week: int  # 1 = Sunday … 7 = Saturday
    last_in_month: bool


@dataclass(frozen=True)
class TimeRules:
    zone: str
    gmt_offset: int  # seconds, standard time
    dst: bool
    fixed_day: bool = False
    start: DstPoint | None = None
    stop: DstPoint | None = None

    def params(self) -> dict[str, str]:
        """The tcpIpApp.sntp.* parameters, in a stable order."""
        p = {
            "tcpIpApp.sntp.gmtOffset": str(self.gmt_offset),
            "tcpIpApp.sntp.gmtOffset.overrideDHCP": "1",
            "tcpIpApp.sntp.daylightSavings.enable": "1" if self.dst else "0",
        }
        if self.dst:
            p["tcpIpApp.sntp.daylightSavings.fixedDayEnable"] = "1" if self.fixed_day else "0"
            for name, pt in (("start", self.start), ("stop", self.stop)):
                pre = f"tcpIpApp.sntp.daylightSavings.{name}"
                p[f"{pre}.month"] = str(pt.month)
                p[f"{pre}.date"] = str(pt.date)
                p[f"{pre}.time"] = str(pt.time)
                p[f"{pre}.dayOfWeek"] = str(pt.day_of_week)
                p[f"{pre}.dayOfWeek.lastInMonth"] = "1" if pt.last_in_month else "0"
        return p


class UnknownZone(ValueError):
    pass


def _transitions(zone: ZoneInfo, year: int):
    """(utc instant, offset before, offset after) for each change within the year."""
    out = []
    t = datetime(year, 1, 1, tzinfo=timezone.utc)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    prev = t.astimezone(zone).utcoffset()
    # hourly steps find every change; then narrow to the minute
    while t < end:
        nxt = t + timedelta(hours=1)
        off = nxt.astimezone(zone).utcoffset()
        if off != prev:
            lo = t
            while lo + timedelta(minutes=1) < nxt and (lo + timedelta(minutes=1)).astimezone(zone).utcoffset() == prev:
                lo += timedelta(minutes=1)
            out.append((lo + timedelta(minutes=1), prev, off))
            prev = off
        t = nxt
    return out


def _point(local: datetime) -> tuple[int, int, int, int, bool, int]:
    days = calendar.monthrange(local.year, local.month)[1]
    dow = (local.isoweekday() % 7) + 1  # Sunday=1
    occurrence = (local.day - 1) // 7 + 1
    last = local.day + 7 > days
    return local.month, occurrence, local.hour, dow, last, local.day


@functools.lru_cache(maxsize=64)
def rules_for(zone_name: str, year: int) -> TimeRules:
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownZone(zone_name) from exc
    pairs = []
    std = None
    for y in (year, year + 1):
        tr = _transitions(zone, y)
        offsets = [o for _, a, b in tr for o in (a, b)] or [datetime(y, 1, 1, tzinfo=timezone.utc).astimezone(zone).utcoffset()]
        std = min(offsets) if std is None else min(std, *offsets)
        pairs.append(tr)
    if not (len(pairs[0]) == 2 and len(pairs[1]) == 2):
        # no DST, or an irregular year (a zone changing its law): the offset in force at the end
        latest = datetime(year + 2, 1, 1, tzinfo=timezone.utc).astimezone(zone).utcoffset()
        return TimeRules(zone_name, int(latest.total_seconds()), False)
    std_s = int(std.total_seconds())
    points = []
    for tr in pairs:
        start = next(t for t in tr if t[2] > t[1])
        stop = next(t for t in tr if t[2] < t[1])
        s_local = (start[0] + start[1]).replace(tzinfo=None)  # wall clock before the change
        e_local = (stop[0] + stop[1]).replace(tzinfo=None)
        points.append((_point(s_local), _point(e_local)))
    # Occurrence rules must explain both years; otherwise fall back to this year's fixed dates.
    fixed = False
    result = []
    for i in range(2):
        a, b = points[0][i], points[1][i]
        month, occ, hour, dow, last, _day = a
        same = a[0] == b[0] and a[2] == b[2] and a[3] == b[3]
        if same and a[4] and b[4]:  # "last Sunday" rules are common, "4th Sunday" ones rare
            result.append(DstPoint(month, 1, hour, dow, True))
        elif same and a[1] == b[1]:
            result.append(DstPoint(month, (occ - 1) * 7 + 1, hour, dow, False))
        else:
            fixed = True
    if fixed:
        result = [DstPoint(p[0], p[5], p[2], p[3], False) for p in points[0]]
    return TimeRules(zone_name, std_s, True, fixed, result[0], result[1])


def suggest_zone(name: str) -> str | None:
    import difflib

    zones = available_timezones()
    lower = {z.lower(): z for z in zones}
    if name.lower() in lower:
        return lower[name.lower()]
    m = difflib.get_close_matches(name, sorted(zones), n=1, cutoff=0.6)
    return m[0] if m else None
