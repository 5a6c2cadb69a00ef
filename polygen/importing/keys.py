"""A phone's ``keys:`` back from what it was given (polygen.linekeys, polygen.directory).

Busy lamp fields are ``attendant.resourceList.N.*``; speed dials are the items of the phone's own
directory (``<mac>-directory.xml``) with a speed-dial index ``<sd>``, every other item being one
of the company directory's; on UC Software 4 and later ``lineKey.N.*`` gives their order after
the lines. Keys are kept only when a build from them gives the phone exactly the parameters and
the directory it had; otherwise the parameters stay raw settings (``infer``).
"""

from __future__ import annotations

import dataclasses
import re

from polygen.directory import DirectoryEntry, directory_entries, phone_directory
from polygen.importing.tree import DirectoryItem
from polygen.inventory import Inventory, Key, Phone
from polygen.linekeys import key_params

_NUMBER_RE = re.compile(r"^\+?[0-9*#]{1,32}$")  # what inventory.load takes as a speed dial's number
_ITEM_FIELDS = {"fn", "ln", "ct", "lb", "sd"}


def own_speed_dials(items: list[DirectoryItem], company: list[DirectoryItem]) -> list[tuple[int, dict]] | None:
    """The items of a phone's own directory that carry a speed-dial index, by index, when the
    directory is the company's plus those (as polygen writes a phone's copy); else None."""
    listed = {tuple(sorted(it.fields.items())) for it in company}
    names = {(it.fields.get("fn", ""), it.fields.get("ln", ""), it.fields.get("ct", "")) for it in company}
    speed: list[tuple[int, dict]] = []
    for it in items:
        f = it.fields
        if "sd" not in f:
            if tuple(sorted(f.items())) not in listed:
                return None
            continue
        if set(f) - _ITEM_FIELDS or not f["sd"].isdigit() or not _NUMBER_RE.match(f.get("ct", "")):
            return None
        if (f.get("fn", ""), f.get("ln", ""), f.get("ct", "")) not in names and \
                (f.get("ln", "") or f.get("fn", "") != f.get("lb", "")):
            return None  # a number of its own: polygen names it by its label alone
        speed.append((int(f["sd"]), f))
    speed.sort(key=lambda s: s[0])
    if not speed or [i for i, _ in speed] != list(range(1, len(speed) + 1)):
        return None
    return speed


def _fields(e: DirectoryEntry) -> dict[str, str]:
    """An entry as the directory file has it (templates/directory.xml.j2)."""
    f = {"fn": e.first_name, "ln": e.last_name, "ct": e.contact}
    if e.label:
        f["lb"] = e.label
    if e.sd:
        f["sd"] = str(e.sd)
    return f


def phone_keys(inv: Inventory, phone: Phone, params: dict[str, str], speed: list[tuple[int, dict]] | None,
               directory: list[DirectoryItem] | None) -> tuple[Key, ...] | None:
    """The keys that give ``phone`` (its lines as inferred) exactly ``params`` and ``directory``
    (its own directory's items, or None when it has none); None when no keys do."""
    blfs: list[Key] = []
    while addr := params.get(f"attendant.resourceList.{len(blfs) + 1}.address"):
        target, at, host = addr.rpartition("@")
        if not at or host != inv.site.sip_server or target not in inv.extensions:
            return None
        blfs.append(Key("blf", target))
    shared = directory_entries(inv)
    by_number = {e.contact: e for e in shared}
    dials: list[Key] = []
    for _, f in speed or ():
        e = by_number.get(f["ct"])
        if e is not None:
            ext = inv.extensions.get(e.key)
            default = e.label or (ext.display_name if ext else f"{e.first_name} {e.last_name}".strip())
        else:
            default = f["ct"]
        label = f.get("lb", "")
        dials.append(Key("speed_dial", f["ct"], "" if label == default else label))
    if not blfs and not dials:
        return ()
    if params.get("lineKey.reassignment.enabled") == "1":
        keys = _in_key_order(params, len(phone.lines), blfs, dials)
        if keys is None:
            return None
    else:
        keys = blfs + dials  # the firmware lays them out itself: one order is as good as another
    candidate = dataclasses.replace(phone, keys=tuple(keys))
    if any(params.get(k) != v for k, v in key_params(inv, candidate, inv.model(candidate))):
        return None
    if dials and [_fields(e) for e in phone_directory(inv, shared, candidate)] != \
            [it.fields for it in directory or ()]:
        return None
    return tuple(keys)


def _in_key_order(params: dict[str, str], lines: int, blfs: list[Key], dials: list[Key]) -> list[Key] | None:
    """The keys in the order ``lineKey.N.category``/``.index`` place them after the lines."""
    keys: list[Key] = []
    blf = iter(blfs)
    n = lines + 1
    while (category := params.get(f"lineKey.{n}.category")) in ("BLF", "SpeedDial"):
        if category == "BLF":
            key = next(blf, None)
        else:
            index = params.get(f"lineKey.{n}.index", "")
            key = dials[int(index) - 1] if index.isdigit() and 0 < int(index) <= len(dials) else None
        if key is None:
            return None
        keys.append(key)
        n += 1
    return keys if len(keys) == len(blfs) + len(dials) and len(set(map(id, keys))) == len(keys) else None
