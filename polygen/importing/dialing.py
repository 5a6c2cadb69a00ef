"""``site.dialing`` back from the digit map the phones were given (polygen.dialcheck).

polygen's generated map is the emergency numbers, then the feature codes (the voicemail number
last when it starts with * or #), the extensions' patterns and ``<prefix>xx.T``. So a map of that
shape is read back into ``emergency``, ``feature_codes`` and ``outside_prefix``, and kept so only
when generating from them gives the very same map; any other map is kept as written
(``site.dialing.digitmap``). Phones that had no map keep none (``digitmap: ""``) when Polycom's
default dials every number of the site; otherwise polygen's map is written, and said so.
"""

from __future__ import annotations

import dataclasses
import re

from polygen.dialcheck import generated_digitmap
from polygen.dialplan import check_extensions, parse_digitmap
from polygen.inventory import Dialing, Site

_OUTSIDE_RE = re.compile(r"([0-9]+)xx\.T")


def dialing_for(digitmap: str, site: Site, extensions) -> Dialing:
    """The ``site.dialing`` that makes polygen write ``digitmap`` for ``site`` (its voicemail
    number) and ``extensions``."""
    rules = digitmap.split("|") if digitmap else []
    prefix = None
    if rules and (m := _OUTSIDE_RE.fullmatch(rules[-1])):
        prefix, rules = m.group(1), rules[:-1]
    known = {e for e in extensions if e.isascii() and e.isdigit()} | {site.voicemail}
    emergency, codes = [], []
    for rule in rules:
        if rule.isdigit() and rule not in known and not codes:
            emergency.append(rule)
        elif rule[:1] in ("*", "#"):
            codes.append(rule)
        else:
            break
    if site.voicemail in codes:  # generated from site.voicemail, not listed as a feature code
        codes.remove(site.voicemail)
    guess = Dialing(tuple(emergency), prefix, tuple(codes))
    try:
        made = generated_digitmap(dataclasses.replace(site, dialing=guess), extensions)
    except ValueError:  # DialPlanError, DigitMapError: not polygen's shape after all
        made = None
    return guess if made == digitmap else Dialing(digitmap=digitmap)


def dials_everything(digitmap: str, timeouts: str | None, handling: str, site: Site, extensions) -> bool:
    """Does this map, as a phone applies it, send every numeric extension and the voicemail
    number whole (what ``check`` demands of a map it is given)?"""
    numbers = [e for e in extensions if e.isascii() and e.isdigit()]
    if site.voicemail:
        numbers.append(site.voicemail)
    try:
        dm = parse_digitmap(digitmap, timeouts)
    except ValueError:  # a map the phone would not take
        return False
    return not check_extensions(dm, numbers, int(handling) if handling in ("0", "1", "2") else 0)


def as_yaml(dialing: Dialing) -> dict | None:
    """``site.dialing`` as the inventory writes it; None when it says nothing."""
    out: dict = {}
    if dialing.emergency:
        out["emergency"] = list(dialing.emergency)
    if dialing.outside_prefix is not None:
        out["outside_prefix"] = dialing.outside_prefix
    if dialing.feature_codes:
        out["feature_codes"] = list(dialing.feature_codes)
    if dialing.digitmap is not None:
        out["digitmap"] = dialing.digitmap
    return out or None
