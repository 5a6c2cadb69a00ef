"""``export_csv(inventory) -> text``: the inventory's phones and extensions in the shape
``polygen import csv`` reads, one row per line of a phone, then the extensions on no phone.

A value equal to what the inventory would compute anyway (display name, mailbox and label from
the name and extension, directory: yes, shared: no) is left empty, so that importing the file
gives back the same entries. Passwords only with ``with_secrets``. What the CSV cannot carry
(phone settings, time zones and keys, the site, contacts, models) is listed in ``left_out``.
"""

from __future__ import annotations

import csv
import io

from polygen.inventory import Extension, Inventory

COLUMNS = ("mac", "model", "ext", "first_name", "last_name", "display_name", "mailbox", "label", "directory",
           "shared")


def _mac(mac: str) -> str:
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


def _ext_cells(e: Extension, with_secrets: bool) -> list[str]:
    default_display = " ".join(x for x in (e.first_name, e.last_name) if x) or e.ext
    cells = [e.ext, e.first_name, e.last_name, "" if e.display_name == default_display else e.display_name,
             "" if e.mailbox == e.ext else e.mailbox, "" if e.label == e.ext else e.label,
             "" if e.directory else "no", "yes" if e.shared else ""]
    return cells + ([e.secret] if with_secrets else [])


def export_csv(inv: Inventory, *, with_secrets: bool = False) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS + (("secret",) if with_secrets else ()))
    on_phone = set()
    for p in inv.phones:
        if not p.lines:
            w.writerow([_mac(p.mac), p.model] + [""] * (len(COLUMNS) - 2 + with_secrets))
        for ext in p.lines:
            on_phone.add(ext)
            w.writerow([_mac(p.mac), p.model] + _ext_cells(inv.extensions[ext], with_secrets))
    for ext, e in inv.extensions.items():
        if ext not in on_phone:
            w.writerow(["", ""] + _ext_cells(e, with_secrets))
    return out.getvalue()


def left_out(inv: Inventory) -> list[str]:
    """What the inventory holds that the CSV does not, one phrase each."""
    notes = ["the site"]
    for what, n in (("settings", sum(1 for p in inv.phones if p.settings)),
                    ("time zone", sum(1 for p in inv.phones if p.timezone)),
                    ("keys", sum(1 for p in inv.phones if p.keys))):
        if n:
            notes.append(f"the {what} of {n} phone{'s' if n != 1 else ''}")
    if inv.contacts:
        notes.append(f"{len(inv.contacts)} contact{'s' if len(inv.contacts) != 1 else ''}")
    return notes
