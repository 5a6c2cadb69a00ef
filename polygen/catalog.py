"""The built-in model catalog.

Each model knows the token its HTTP User-Agent carries (``SPIP_330``), the master-config token
(the UA token without the underscore, docs/polycom.md §1.3), how many registrations it takes, its
split firmware part number, and the newest firmware release it runs, which decides the parameter
dialect (SIP 3.2 and older, or UC Software 3.3 and later: docs/polycom.md §10). ``models:`` in the
inventory overrides any of these per model, or adds a model the catalog lacks. What no public
source confirms for a model is listed in ``Model.unverified``; ``polygen check`` says so.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace

# family prefix of the User-Agent, per catalog family
UA_FAMILY = {
    "SPIP": "PolycomSoundPointIP",
    "SSIP": "PolycomSoundStationIP",
    "SSDuo": "PolycomSoundStationIP",
    "VVX": "PolycomVVX",
    "Trio": "PolycomRealPresenceTrio",
    "Edge": "PolyEdge",
    "CCX": "PolyCCX",
}

# What Model.unverified may name, as the check warning words it.
UNVERIFIABLE = {
    "family": "User-Agent family",
    "ua_token": "User-Agent token",
    "token": "master-config token",
    "lines": "line count",
    "firmware": "firmware release",
    "part_number": "part number",
}
# models: keys that confirm catalog fields (an admin who sets ua_token has seen the phone's UA)
_CONFIRMS = {"ua_token": ("ua_token", "token", "family"), "lines": ("lines",), "firmware": ("firmware",),
             "part_number": ("part_number",)}


@dataclass(frozen=True)
class Model:
    key: str  # canonical inventory name, e.g. "IP330"
    name: str  # marketing name, e.g. "SoundPoint IP 330"
    ua_token: str  # User-Agent model token, e.g. "SPIP_330"
    lines: int  # registrations (reg.N) the model supports
    firmware: str  # release directory under firmware/, e.g. "3.3.5"
    part_number: str = ""
    aliases: tuple[str, ...] = field(default=())
    unverified: tuple[str, ...] = field(default=())  # keys of UNVERIFIABLE no public source confirms

    @property
    def token(self) -> str:
        """Master-config token: the UA token without underscores (docs/polycom.md §1 rule)."""
        return self.ua_token.replace("_", "")

    @property
    def family(self) -> str:
        return UA_FAMILY.get(re.match(r"[A-Za-z]+", self.ua_token).group(0), "Polycom")

    @property
    def dialect(self) -> str:
        return dialect_of(self.firmware)

    @property
    def user_agent(self) -> str:
        """A User-Agent this model sends when it provisions with its catalog firmware (docs/polycom.md §2)."""
        return f"FileTransport {self.family}-{self.ua_token}-UA/{self.firmware}.0000 Type/Application"

    @property
    def firmware_names(self) -> tuple[str, ...]:
        """The image names this model asks for in its release directory, in the order it asks:
        its split image ``<part>.sip.ld`` first, then the combined ``sip.ld`` (docs/polycom.md §6)."""
        return (f"{self.part_number}.sip.ld", "sip.ld") if self.part_number else ("sip.ld",)

    def unverified_note(self) -> str | None:
        """What the catalog could not confirm about this model, for a warning; None when nothing."""
        if not self.unverified:
            return None
        value = {"family": self.family, "ua_token": self.ua_token, "token": self.token,
                 "lines": str(self.lines), "firmware": self.firmware, "part_number": self.part_number or "unknown"}
        what = ", ".join(f"{UNVERIFIABLE[k]} {value[k]}" for k in UNVERIFIABLE if k in self.unverified)
        keys = ", ".join(k for k, fields in _CONFIRMS.items() if set(fields) & set(self.unverified))
        return (f"{self.name}: unverified in polygen's catalog: {what}; compare with one of your phones, "
                f"then set them under models.{self.key} ({keys}) to confirm")


@functools.lru_cache(maxsize=256)  # asked once per phone per build
def dialect_of(release: str) -> str:
    """'sip3' for SIP 3.2 and older releases, 'uc' for UC Software 3.3 and later.

    3.3 is the first release whose parameter files are ``<polycomConfig>`` and that needs no
    ``sip.cfg``/``phone1.cfg`` (docs/polycom.md §10: Polycom's 4.0.15 master gives the IP 330 on
    3.3.5 ``CONFIG_FILES_SPIP330=""``)."""
    m = re.match(r"(\d+)(?:\.(\d+))?", release)
    if not m:
        return "uc"
    return "sip3" if (int(m.group(1)), int(m.group(2) or 0)) < (3, 3) else "uc"


def _sp(num, lines, fw, part, unverified=()):
    n = str(num)
    return Model(f"IP{n}", f"SoundPoint IP {n}", f"SPIP_{n}", lines, fw, part,
                 (f"SPIP_{n}", f"SPIP{n}", f"SOUNDPOINTIP{n}"), unverified)


def _ss(num, lines, fw, part, unverified=()):
    n = str(num)
    return Model(f"IP{n}", f"SoundStation IP {n}", f"SSIP_{n}", lines, fw, part,
                 (f"SSIP_{n}", f"SSIP{n}", f"SOUNDSTATIONIP{n}"), unverified)


def _vvx(num, lines, fw, part, unverified=()):
    n = str(num)
    return Model(f"VVX{n}", f"VVX {n}", f"VVX_{n}", lines, fw, part, (f"VVX_{n}",), unverified)


def _edge(name, lines, unverified=("ua_token", "token", "lines", "firmware", "part_number")):
    return Model(name, f"Poly Edge {name}", f"Edge_{name}", lines, "8.1.3", "", (f"EDGE{name}", f"Edge_{name}"),
                 unverified)


# Poly CCX: the only User-Agents found are test fixtures of third-party tools
# ("FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:...) Type/Application"); line counts, the
# release and the part numbers are not confirmed by any public source (docs/polycom.md §2.4).
_CCX_UNVERIFIED = ("family", "ua_token", "token", "lines", "firmware", "part_number")


def _ccx(num, lines):
    n = str(num)
    return Model(f"CCX{n}", f"Poly CCX {n}", f"CCX_{n}", lines, "8.0.2", "", (f"CCX_{n}", f"POLYCCX{n}"),
                 _CCX_UNVERIFIED)


# Firmware: the last release Polycom shipped for the model (the 6.3.0 master pins legacy models to
# these images: sip_213, sip_318, sip_327, sip_335, sip_404, sip_4014, sip_590).
# unverified: what ../docs/polycom.md has no source for (models.csv "not observed" or missing).
BUILTIN: tuple[Model, ...] = (
    _sp(300, 2, "2.1.3", "2345-11300-001", ("part_number",)),
    _sp(301, 2, "3.1.8", "2345-11300-010"),
    _sp(320, 2, "3.3.5", "2345-12200-002"),
    _sp(321, 2, "4.0.15", "2345-12360-001"),
    _sp(330, 2, "3.3.5", "2345-12200-001"),
    _sp(331, 2, "4.0.15", "2345-12365-001"),
    _sp(335, 2, "4.0.15", "2345-12375-001"),
    _sp(430, 2, "3.2.7", "2345-11402-001"),
    _sp(450, 3, "4.0.15", "2345-12450-001"),
    _sp(500, 3, "2.1.3", "2345-11500-001", ("part_number",)),
    _sp(501, 3, "3.1.8", "2345-11500-030"),
    _sp(550, 4, "4.0.15", "2345-12500-001"),
    _sp(560, 4, "4.0.15", "2345-12560-001"),
    _sp(600, 6, "3.1.8", "2345-11600-001"),
    _sp(601, 6, "3.1.8", "2345-11605-001"),
    _sp(650, 6, "4.0.15", "2345-12600-001"),
    _sp(670, 6, "4.0.15", "2345-12670-001"),
    _ss(4000, 1, "3.1.8", "2201-06642-001", ("ua_token",)),
    _ss(5000, 1, "4.0.15", "3111-30900-001"),
    _ss(6000, 1, "4.0.15", "3111-15600-001"),
    _ss(7000, 1, "4.0.15", "3111-40000-001", ("ua_token",)),
    Model("SSDUO", "SoundStation Duo", "SSDuo", 1, "4.0.15", "3111-19000-001", ("SOUNDSTATIONDUO",),
          ("family", "ua_token")),
    _vvx(101, 1, "6.4.6", "3111-40250-001"),
    _vvx(150, 2, "6.4.6", "3111-48810-001"),
    _vvx(201, 2, "6.4.6", "3111-40450-001"),
    _vvx(250, 4, "6.4.6", "3111-48820-001"),
    _vvx(300, 6, "5.9.7", "3111-46135-002"),
    _vvx(301, 6, "6.4.6", "3111-48300-001"),
    _vvx(310, 6, "5.9.7", "3111-46161-001"),
    _vvx(311, 6, "6.4.6", "3111-48350-001"),
    _vvx(350, 6, "6.4.6", "3111-48830-001"),
    _vvx(400, 12, "5.9.7", "3111-46157-002"),
    _vvx(401, 12, "6.4.6", "3111-48400-001"),
    _vvx(410, 12, "5.9.7", "3111-46162-001"),
    _vvx(411, 12, "6.4.6", "3111-48450-001"),
    _vvx(450, 12, "6.4.6", "3111-48840-001"),
    _vvx(500, 12, "5.9.7", "3111-44500-001"),
    _vvx(501, 12, "6.4.6", "3111-48500-001"),
    _vvx(600, 16, "5.9.7", "3111-44600-001"),
    _vvx(601, 16, "6.4.6", "3111-48600-001"),
    _vvx(1500, 6, "5.9.7", "2345-17960-001", ("ua_token",)),
    Model("TRIO8800", "RealPresence Trio 8800", "Trio_8800", 1, "7.2.6", "3111-65290-001",
          ("Trio_8800", "TRIO_8800")),
    Model("TRIO8500", "RealPresence Trio 8500", "Trio_8500", 1, "7.2.6", "", ("Trio_8500", "TRIO_8500"),
          ("token", "lines", "firmware", "part_number")),
    Model("TRIO8300", "RealPresence Trio 8300", "Trio_8300", 1, "7.2.6", "", ("Trio_8300", "TRIO_8300"),
          ("family", "ua_token", "token", "lines", "firmware", "part_number")),
    # a SIP UA table of a third-party tool ("PolycomRealPresenceTrio-Trio_C60-UA/7.2.2.1094") only
    Model("TRIOC60", "Poly Trio C60", "Trio_C60", 1, "7.2.6", "", ("Trio_C60", "TRIO_C60", "POLYTRIOC60"),
          ("family", "ua_token", "token", "lines", "firmware", "part_number")),
    _edge("E100", 2),
    _edge("E220", 4),
    _edge("E300", 8),
    _edge("E320", 8),
    _edge("E350", 8),
    _edge("E400", 16),
    _edge("E450", 16, ("token", "lines", "firmware", "part_number")),  # FreePBX fork: PolyEdge-Edge_E450
    _edge("E500", 16),
    _edge("E550", 16),
    _ccx(350, 6),
    _ccx(400, 8),
    _ccx(500, 16),
    _ccx(505, 16),
    _ccx(600, 16),
    _ccx(700, 16),
)


def normalise_name(name: str) -> str:
    """Spelling-insensitive lookup key: 'VVX 410', 'vvx-410' and 'VVX410' are the same model."""
    return re.sub(r"[\s\-]", "", name).upper()


class Catalog:
    """Models by canonical key, alias and UA token."""

    def __init__(self, models=BUILTIN):
        self.models: dict[str, Model] = {}
        self._index: dict[str, str] = {}
        for m in models:
            self.add(m)

    def add(self, model: Model) -> None:
        self.models[model.key] = model
        for alias in (model.key, model.ua_token, model.token, model.name, *model.aliases):
            self._index[normalise_name(alias)] = model.key
            self._index[normalise_name(alias).replace("_", "")] = model.key

    def replace(self, key: str, **changes) -> Model:
        """The model with ``changes``; what they set counts as confirmed, no longer unverified."""
        old = self.models[key]
        confirmed = {f for k in changes for f in _CONFIRMS.get(k, ())}
        changes.setdefault("unverified", tuple(f for f in old.unverified if f not in confirmed))
        model = replace(old, **changes)
        self.add(model)
        return model

    def find(self, name: str) -> Model | None:
        n = normalise_name(name)
        key = self._index.get(n) or self._index.get(n.replace("_", ""))
        return self.models.get(key) if key else None

    def suggest(self, name: str) -> str | None:
        import difflib

        n = normalise_name(name)
        # a truncated name ("VVX41") most likely means the first model it starts
        prefixed = sorted((k for k in self.models if normalise_name(k).startswith(n)), key=lambda k: (len(k), k))
        if prefixed and len(n) >= 3:
            return prefixed[0]
        match = difflib.get_close_matches(n, list(self._index), n=1, cutoff=0.6)
        return self._index[match[0]] if match else None
