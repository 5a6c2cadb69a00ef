"""What a phone's keys carry after its lines, and how many contacts its directory keeps.

Pure functions over the inventory's values, shared by the checks (``inventory``) and the
renderer (``plan``). Facts and sources: docs/polycom.md §3.7, §4 and §10.

* Busy lamp fields are the static resource list ``attendant.resourceList.N.*`` (SIP 3.2 and
  later, UC Software); a ``normal`` resource is called, and its ringing calls picked up, from
  its key.
* A speed dial is a contact directory entry with a speed-dial index ``sd``; the phone shows it on
  a line key. The site's directory is shared by every phone, so a phone with speed dials gets a
  directory of its own: the shared entries plus its speed dials.
* UC Software 4 and later place every key where ``lineKey.N.category``/``.index`` say
  (``lineKey.reassignment.enabled``); older releases lay them out themselves.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from polygen.catalog import Model
    from polygen.inventory import Inventory, Key, Phone

# dir.local.contacts.maxNum per master-config token, from Polycom's UC 4.0.15 and 6.3.0
# Config/features.cfg (docs/polycom.md §10); every other model keeps up to the default 9999.
DIRECTORY_DEFAULT_LIMIT = 9999
DIRECTORY_LIMITS = {
    "SPIP321": 99, "SPIP331": 99, "SPIP335": 99,
    "SSIP5000": 99, "SSIP6000": 99, "SSIP7000": 99,
    "VVX500": 500,
}
BLF_TYPE = "normal"  # a person: their key calls them and picks up their ringing calls


def directory_limit(model: Model) -> int:
    return DIRECTORY_LIMITS.get(model.token, DIRECTORY_DEFAULT_LIMIT)


def _release(model: Model) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", model.firmware)[:2])


def has_static_blf(model: Model) -> bool:
    """attendant.resourceList exists from SIP 3.2.0 on (Engineering Advisory 62475)."""
    return _release(model) >= (3, 2)


def has_flexible_line_keys(model: Model) -> bool:
    """lineKey.N.* exists in UC Software 4 (polycomConfig.xsd 4.0.15) and later."""
    return _release(model) >= (4,)


def speed_dials(phone: Phone) -> list[tuple[int, Key]]:
    """The phone's speed dials with their index (1, 2, … in key order)."""
    return list(enumerate((k for k in phone.keys if k.kind == "speed_dial"), 1))


def key_params(inv: Inventory, phone: Phone, model: Model) -> list[tuple[str, str]]:
    """attendant.resourceList.* for the busy lamp fields and, where the firmware has them,
    lineKey.* placing lines, busy lamp fields and speed dials in the inventory's order."""
    if not phone.keys:
        return []
    out: list[tuple[str, str]] = []
    blf = has_static_blf(model)
    if blf:
        for n, k in enumerate((k for k in phone.keys if k.kind == "blf"), 1):
            p = f"attendant.resourceList.{n}."
            out += [(p + "address", f"{k.target}@{inv.site.sip_server}"),
                    (p + "label", inv.extensions[k.target].display_name),
                    (p + "type", BLF_TYPE)]
    if has_flexible_line_keys(model):
        out.append(("lineKey.reassignment.enabled", "1"))
        slots = [("Line", str(i)) for i in range(1, len(phone.lines) + 1)]
        sd = 0
        for k in phone.keys:
            if k.kind == "blf":
                slots.append(("BLF", "0"))  # BLF keys take the resource list in order (§3.7)
            else:
                sd += 1
                slots.append(("SpeedDial", str(sd)))
        for n, (category, index) in enumerate(slots, 1):
            out += [(f"lineKey.{n}.category", category), (f"lineKey.{n}.index", index)]
    return out
