"""``polygen status``: one row per phone, from the served build and what the servers saw.

The phones the inventory has come from the served generation's phone index (the manifest's
``phones``, written by the build: model, User-Agent token, firmware release, lines), so status
needs neither the inventory nor its secrets, and shows what is served. What the phones did comes
from the log database: their sightings (``polygen.sightings``) and the problem lines of their
logs (``BaseLogStore.problems``). Each phone gets one state, the first that applies:

* ``unknown``: seen, but not in the served build (its row shows the model it reported);
* ``mismatch``: its User-Agent reports another model than the inventory gives it, so it is
  served the wrong files (a VVX 411 listed as an IP 330 gets SIP 3.x parameters);
* ``errors``: its logs received within ``stale_after`` have an error-level line (event class 4,
  minor error, or above) or a registration failure: the newest is its ``problem``;
* ``stale``: not seen within ``stale_after``;
* ``never-seen``: in the build, never seen;
* ``ok``: seen recently, nothing wrong.

Rows are plain dicts with the keys of ``FIELDS`` (the JSON contract of ``--format json``);
times are ISO 8601 UTC (``2026-11-29T10:58:21Z``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from polygen.catalog import Catalog
from polygen.errors import PolygenError
from polygen.logstore import Row
from polygen.safetext import json_dumps, mask, visible
from polygen.sightings import Sighting
from polygen.statuspage import STATES, count_states, sort_rows
from polygen.write import generation_commit

__all__ = ["FIELDS", "STATES", "Served", "fleet", "format_csv", "format_json", "format_table", "read_served",
           "select", "summary"]

FIELDS = ("mac", "state", "model", "reported_model", "firmware", "target_release", "first_seen", "last_seen",
          "last_boot", "address", "lines", "problem")
MANIFEST = ".polygen-manifest.json"
_PHONE_CFG_SUFFIX = "-phone.cfg"


@dataclass(frozen=True)
class Served:
    """What the served generation says of the phones."""

    generation: str | None  # its name; None before the first build
    site_name: str | None
    phones: Mapping[str, Mapping]  # MAC -> {"model", "ua_token", "release", "lines"}
    commit: str | None = None  # the commit it was built from (--git), else None


def read_served(out: Path) -> Served:
    """The phone index of the generation ``out`` points to. A build made before polygen kept the
    index gives its phones (from the ``<mac>-phone.cfg`` names) without models or lines."""
    out = Path(out)
    try:
        gen = out.resolve(strict=True)
    except (OSError, RuntimeError):
        return Served(None, None, {})
    path = gen / MANIFEST
    try:
        doc = json.loads(path.read_bytes())
        files = doc["files"]
    except FileNotFoundError:
        return Served(gen.name, None, {}, generation_commit(gen))
    except PermissionError:
        raise PolygenError(f"cannot read {path}: permission denied; run polygen status as the user that "
                           "builds (sudo -u polygen polygen status ...)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PolygenError(f"{path} is damaged ({exc}); run polygen build") from exc
    phones = doc.get("phones")
    if not isinstance(phones, dict):
        phones = {name[:-len(_PHONE_CFG_SUFFIX)]: {} for name in files if name.endswith(_PHONE_CFG_SUFFIX)}
    site = doc.get("site") if isinstance(doc.get("site"), dict) else {}
    return Served(gen.name, site.get("name"), phones, generation_commit(gen))


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC, ``2026-11-29T10:58:21Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def ago(seconds: float) -> str:
    """``3d 4h``, ``5h 12m``, ``7m``: a duration as a person says it."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def _model_name(catalog: Catalog, token: str | None) -> str | None:
    """A User-Agent model token as the inventory writes models (``VVX_410`` -> ``VVX410``); a
    token the catalog does not know stays as it came."""
    if not token:
        return None
    found = catalog.find(token)
    return found.key if found else token


def fleet(served: Served, sightings: Iterable[Sighting], problems: Mapping[str, Row], *, now: float,
          stale_after: float, catalog: Catalog | None = None) -> list[dict]:
    """One row per phone of the build and per phone seen (module docstring), most severe first."""
    catalog = catalog or Catalog()
    seen: dict[str, list[Sighting]] = {}
    for s in sightings:
        seen.setdefault(s.mac, []).append(s)
    rows = []
    for mac in set(served.phones) | set(seen):
        entry = served.phones.get(mac)
        mine = seen.get(mac, [])
        newest = max(mine, key=lambda s: s.last_seen, default=None)
        with_ua = max((s for s in mine if s.ua_model), key=lambda s: s.last_seen, default=None)
        boots = [s.last_seen for s in mine if s.kind == "boot"]
        row = dict.fromkeys(FIELDS)
        row.update(
            mac=mac,
            model=entry.get("model") if entry else None,
            reported_model=_model_name(catalog, with_ua.ua_model) if with_ua else None,
            firmware=with_ua.firmware if with_ua else None,
            target_release=entry.get("release") if entry else None,
            first_seen=iso(min(s.first_seen for s in mine)) if mine else None,
            last_seen=iso(newest.last_seen) if newest else None,
            last_boot=iso(max(boots)) if boots else None,
            address=newest.address if newest else None,
            lines=list(entry.get("lines") or []) if entry else [],
        )
        row["state"], row["problem"] = _judge(mac, entry, newest, with_ua, problems.get(mac), catalog,
                                              now=now, stale_after=stale_after)
        rows.append(row)
    return sort_rows(rows)


def _judge(mac, entry, newest, with_ua, problem: Row | None, catalog: Catalog, *, now, stale_after):
    """(state, problem) of one phone; the first state that applies (module docstring)."""
    if entry is None:
        return "unknown", f"not in the inventory: polygen phone add {mac} --line EXT"
    if with_ua and entry.get("ua_token") and with_ua.ua_model != entry["ua_token"]:
        theirs = catalog.find(with_ua.ua_model)
        ours = catalog.find(entry["ua_token"])
        return "mismatch", (f"the phone reports {theirs.name if theirs else with_ua.ua_model}, the inventory says "
                            f"{ours.name if ours else entry.get('model')}, whose files it gets; correct the model")
    if problem is not None:
        return "errors", mask(problem.text)
    if newest is None:
        return "never-seen", None
    if newest.last_seen < now - stale_after:
        return "stale", f"not seen for {ago(now - newest.last_seen)}"
    return "ok", None


def select(rows: Iterable[Mapping], *, macs: Sequence[str] = (), exts: Sequence[str] = (),
           states: Sequence[str] = ()) -> list[Mapping]:
    """The rows of these MACs, extensions and states (each filter given: a row must match it)."""
    out = []
    for row in rows:
        if macs and row["mac"] not in macs:
            continue
        if exts and not set(exts) & set(row["lines"] or ()):
            continue
        if states and row["state"] not in states:
            continue
        out.append(row)
    return out


def summary(rows: Sequence[Mapping]) -> str:
    """``5 phones: 2 ok, 1 mismatch, 1 unknown, 1 never-seen`` (most severe first)."""
    counts = count_states(rows)
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    noun = "phone" if len(rows) == 1 else "phones"
    return f"{len(rows)} {noun}" + (f": {', '.join(parts)}" if parts else "")


def format_json(rows: Sequence[Mapping]) -> str:
    """A JSON array, one object per phone with exactly the keys of ``FIELDS``; control characters
    a phone sent are JSON escapes (``safetext.json_dumps``)."""
    return json_dumps([{k: row[k] for k in FIELDS} for row in rows], indent=2)


def format_csv(rows: Sequence[Mapping]) -> str:
    """CSV with a header of ``FIELDS``; ``lines`` joined by spaces."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([" ".join(row[k] or ()) if k == "lines" else visible(str(row[k])) if row[k] is not None
                         else "" for k in FIELDS])
    return buf.getvalue()


TABLE = (("STATE", "state"), ("MAC", "mac"), ("MODEL", "model"), ("REPORTED", "reported_model"),
         ("LINES", "lines"), ("FIRMWARE", "firmware"), ("TARGET", "target_release"), ("LAST SEEN", "last_seen"),
         ("ADDRESS", "address"), ("PROBLEM", "problem"))


def _cell(key: str, value) -> str:
    if value is None or value == []:
        return "-"
    if key == "lines":
        return ",".join(value)
    if key == "last_seen":
        return value.replace("T", " ").removesuffix("Z")
    return str(value)


def format_table(rows: Sequence[Mapping]) -> str:
    """Aligned columns (times in UTC), what a phone sent made visible, then the summary line."""
    cells = [[visible(_cell(key, row[key])) for _, key in TABLE] for row in rows]
    heads = [head for head, _ in TABLE]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]
    lines = ["  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip() for line in [heads, *cells]]
    return "\n".join([*lines, summary(rows)])
