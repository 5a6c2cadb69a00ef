"""What the servers saw of each phone: one *sighting* row per phone and kind of request.

Every request that names a phone is a sighting: a file name that starts with its MAC
(``<mac>.cfg``, ``<mac>-phone.cfg``, ``contacts/<mac>-directory.xml``, ``<mac>-boot.log``, an
override upload), or any request whose User-Agent carries the phone's serial (``SN:``, or UC
4.1's ``_<mac>`` suffix), known to the inventory or not. ``classify`` says which phone and which
kind:

* ``boot``: the boot log upload (``PUT <mac>-boot.log``) or any request of the Updater
  (``Type/Updater``): the phone (re)booted then;
* ``upload``: any other ``PUT`` (the app log, override files, directories, call lists), and the
  ``HEAD`` of a log a phone sends before uploading it;
* ``directory``: ``GET``/``HEAD`` of ``contacts/<mac>-directory.xml``;
* ``config``: every other request (``<mac>.cfg``, ``<mac>-phone.cfg``, a bootstrap, a site file,
  firmware).

A row keeps the first and last time, the number of requests, and of the newest request the
client address, method, path and answer; the model token and firmware version of the newest
request whose User-Agent parsed. So the table grows with the phones, not with the requests.

``Coalescer`` collects the sightings in memory and hands them out in batches (``drain``) for one
database write each (``BaseLogStore.record_sightings``): a boot storm costs dictionary updates,
never a write per request. It is bounded: at most ``max_pending`` rows wait, and at most
``max_unknown`` of them may be phones the build does not know, so MACs made up by a scanner
cannot fill memory or the database (SECURITY.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from polygen.useragent import UserAgent, parse_user_agent

__all__ = ["KINDS", "Coalescer", "Sighting", "classify"]

KINDS = ("config", "directory", "upload", "boot")
DEFAULT_MAC = "000000000000"  # the default master config's name: not a phone
MAX_TEXT = 512  # characters kept of a path or a User-Agent (aiohttp allows 8 KiB headers)

# The last segment of a path starting with a MAC: <mac>.cfg, <mac>-phone.cfg, <mac>-boot.log, ...
_PHONE_FILE_RE = re.compile(r"/(?:[^/]*/)*([0-9A-Fa-f]{12})[-.][^/]*", re.ASCII)
_DIRECTORY_RE = re.compile(r"/(?:[^/]*/)*[0-9A-Fa-f]{12}-directory\.xml", re.ASCII)
_BOOT_LOG_RE = re.compile(r"/(?:[^/]*/)*[0-9A-Fa-f]{12}-boot\.log", re.ASCII)
_LOG_RE = re.compile(r"/(?:[^/]*/)*[0-9A-Fa-f]{12}-(?:boot|app)\.log", re.ASCII)


@dataclass(slots=True)
class Sighting:
    """One phone's requests of one kind, coalesced (see the module docstring)."""

    mac: str
    kind: str
    first_seen: float
    last_seen: float
    requests: int
    address: str | None  # of the newest request
    method: str
    path: str
    status: int
    ua_model: str | None  # the User-Agent's model token (VVX_410), of the newest request that had one
    firmware: str | None  # the version in that User-Agent
    user_agent: str | None  # that User-Agent
    ua_seen: float | None  # the time of that request

    def merge(self, other: Sighting) -> None:
        """Add ``other`` (same phone and kind, older or newer) to this row, as the database does."""
        if other.last_seen >= self.last_seen:
            self.address, self.method, self.path, self.status = other.address, other.method, other.path, other.status
        if other.ua_model is not None and (self.ua_model is None or other.ua_seen >= self.ua_seen):
            self.ua_model, self.firmware, self.user_agent, self.ua_seen = (
                other.ua_model, other.firmware, other.user_agent, other.ua_seen)
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.requests += other.requests

    def as_tuple(self) -> tuple:
        return (self.mac, self.kind, self.first_seen, self.last_seen, self.requests, self.address, self.method,
                self.path, self.status, self.ua_model, self.firmware, self.user_agent, self.ua_seen)


COLUMNS = ("mac", "kind", "first_seen", "last_seen", "requests", "address", "method", "path", "status",
           "ua_model", "firmware", "user_agent", "ua_seen")


def classify(method: str, path: str, user_agent: str | None) -> tuple[str, str, UserAgent | None] | None:
    """``(mac, kind, parsed User-Agent)`` of a request that names a phone, else None.

    ``path`` is the request's path as sent (a query string is ignored). The MAC in the file name
    wins over the User-Agent's serial; the User-Agent's model is kept only when its serial, if
    any, is that MAC."""
    path = path.split("?", 1)[0]
    ua = parse_user_agent(user_agent)
    m = _PHONE_FILE_RE.fullmatch(path)
    mac = m[1].lower() if m and m[1] != DEFAULT_MAC else None
    if mac is None:
        mac = ua.serial if ua is not None and ua.serial != DEFAULT_MAC else None
    if mac is None:
        return None
    if ua is not None and ua.serial not in (None, mac):
        ua = None  # another phone's User-Agent: tells nothing about this one
    if method == "PUT" or (method == "HEAD" and _LOG_RE.fullmatch(path)):  # HEAD comes before an upload
        kind = "boot" if _BOOT_LOG_RE.fullmatch(path) else "upload"
    elif ua is not None and ua.type == "Updater":
        kind = "boot"
    elif _DIRECTORY_RE.fullmatch(path):
        kind = "directory"
    else:
        kind = "config"
    return mac, kind, ua


def sighting(mac: str, kind: str, ua: UserAgent | None, *, when: float, address: str | None, method: str,
             path: str, status: int, user_agent: str | None) -> Sighting:
    """One request as a sighting row (texts cut to ``MAX_TEXT``)."""
    return Sighting(mac, kind, when, when, 1, address, method[:16], path[:MAX_TEXT], int(status),
                    ua.model if ua else None, ua.version if ua else None,
                    user_agent[:MAX_TEXT] if ua and user_agent else None, when if ua else None)


class Coalescer:
    """Sightings waiting for their database write, one row per (MAC, kind); see the module
    docstring. Not thread-safe: the sidecar uses it from its event loop only."""

    def __init__(self, max_pending: int = 200_000, max_unknown: int = 1000):
        self.max_pending = max_pending
        self.max_unknown = max_unknown
        self._pending: dict[tuple[str, str], Sighting] = {}
        self._unknown = 0  # pending rows of phones the build does not know
        self.dropped = 0  # sightings not kept because a bound was reached

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, row: Sighting, known: bool = True) -> bool:
        """Keep ``row`` (merged into the pending row of its phone and kind); False if it was
        dropped at a bound."""
        key = (row.mac, row.kind)
        pending = self._pending.get(key)
        if pending is not None:
            pending.merge(row)
            return True
        if len(self._pending) >= self.max_pending or (not known and self._unknown >= self.max_unknown):
            self.dropped += 1
            return False
        self._pending[key] = row
        if not known:
            self._unknown += 1
        return True

    def drain(self) -> list[Sighting]:
        """Every pending row, sorted by (MAC, kind) (concurrent writers lock rows in one order);
        the coalescer is empty afterwards."""
        rows = sorted(self._pending.values(), key=lambda r: (r.mac, r.kind))
        self._pending = {}
        self._unknown = 0
        return rows

    def restore(self, rows: Iterable[Sighting]) -> None:
        """Put back rows whose write failed, merged with what came meanwhile (bounds apply)."""
        for row in rows:
            self.add(row)
