"""The company directory and a phone's own copy of it (docs/polycom.md §4).

Every phone reads the shared company directory, except a phone with speed dials: Polycom sets a
speed dial only through a directory entry's ``<sd>`` index, so such a phone gets its own file,
the company entries plus its speed dials (polygen.linekeys decides which keys those are).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from polygen.linekeys import speed_dials

if TYPE_CHECKING:
    from polygen.inventory import Inventory, Phone


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One <item>: a listed extension, a contact, or a phone's speed dial."""

    first_name: str
    last_name: str
    contact: str  # <ct>: the extension's mailbox or the contact's number
    label: str = ""  # <lb>; the phone shows "first last" without it
    key: str = ""  # the tie-break of the sort: extension or number
    sd: int | None = None  # <sd>: the speed-dial index, on a phone's own directory only


def directory_entries(inv: Inventory) -> list[DirectoryEntry]:
    """Listed extensions and contacts, by last name, first name, then extension or number."""
    entries = [DirectoryEntry(e.first_name, e.last_name, e.mailbox, key=e.ext)
               for e in inv.extensions.values() if e.directory]
    entries += [DirectoryEntry(c.first_name, c.last_name, c.number, c.label, c.number) for c in inv.contacts]
    entries.sort(key=lambda e: (e.last_name.casefold(), e.first_name.casefold(), e.key))
    return entries


def phone_directory(inv: Inventory, shared: list[DirectoryEntry], phone: Phone) -> list[DirectoryEntry]:
    """The shared entries, with the phone's speed dials: a number already listed gets the index
    on its entry (a contact may appear only once, §4), any other number a new entry."""
    by_number = {sd.target: (i, sd) for i, sd in speed_dials(phone)}
    out: list[DirectoryEntry] = []
    for e in shared:
        hit = by_number.pop(e.contact, None)
        if hit is None:
            out.append(e)
            continue
        i, sd = hit
        ext = inv.extensions.get(e.key)
        label = sd.label or e.label or (ext.display_name if ext else f"{e.first_name} {e.last_name}".strip())
        out.append(replace(e, label=label, sd=i))
    for number, (i, sd) in by_number.items():
        label = sd.label or number
        out.append(DirectoryEntry(label, "", number, label, number, i))
    return out
