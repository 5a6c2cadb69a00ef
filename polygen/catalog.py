"""The built-in model catalog.

Each model knows the token its HTTP User-Agent carries (``SPIP_330``), the master-config token
(the UA token without the underscore, docs/polycom.md §1), how many registrations it takes, its split
firmware part number, and the newest firmware release it runs, which decides the parameter
dialect (SIP 3.x or UC 4+). ``models:`` in the inventory overrides any of these per model, or
adds a model the catalog lacks.
"""

from __future__ import annotations

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
}


@dataclass(frozen=True)
class Model:
    key: str  # canonical inventory name, e.g. "IP330"
    name: str  # marketing name, e.g. "SoundPoint IP 330"
    ua_token: str  # User-Agent model token, e.g. "SPIP_330"
    lines: int  # registrations (reg.N) the model supports
    firmware: str  # release directory under firmware/, e.g. "3.3.5"
    part_number: str = ""
    aliases: tuple[str, ...] = field(default=())

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


def dialect_of(release: str) -> str:
    """'sip3' for SIP 3.x and older releases, 'uc' for UC Software 4 and later."""
    m = re.match(r"(\d+)", release)
    return "sip3" if m and int(m.group(1)) < 4 else "uc"


def _sp(num, lines, fw, part, *extra):
    n = str(num)
    return Model(f"IP{n}", f"SoundPoint IP {n}", f"SPIP_{n}", lines, fw, part,
                 (f"SPIP_{n}", f"SPIP{n}", f"SOUNDPOINTIP{n}") + extra)


def _ss(num, lines, fw, part):
    n = str(num)
    return Model(f"IP{n}", f"SoundStation IP {n}", f"SSIP_{n}", lines, fw, part,
                 (f"SSIP_{n}", f"SSIP{n}", f"SOUNDSTATIONIP{n}"))


def _vvx(num, lines, fw, part):
    n = str(num)
    return Model(f"VVX{n}", f"VVX {n}", f"VVX_{n}", lines, fw, part, (f"VVX_{n}",))


# Firmware: the last release Polycom shipped for the model (the 6.3.0 master pins legacy models to
# these images: sip_213, sip_318, sip_327, sip_335, sip_404, sip_4014, sip_590).
BUILTIN: tuple[Model, ...] = (
    _sp(300, 2, "2.1.3", "2345-11300-001"),
    _sp(301, 2, "3.1.8", "2345-11300-010"),
    _sp(320, 2, "3.3.5", "2345-12200-002"),
    _sp(321, 2, "4.0.15", "2345-12360-001"),
    _sp(330, 2, "3.3.5", "2345-12200-001"),
    _sp(331, 2, "4.0.15", "2345-12365-001"),
    _sp(335, 2, "4.0.15", "2345-12375-001"),
    _sp(430, 2, "3.2.7", "2345-11402-001"),
    _sp(450, 3, "4.0.15", "2345-12450-001"),
    _sp(500, 3, "2.1.3", "2345-11500-001"),
    _sp(501, 3, "3.1.8", "2345-11500-030"),
    _sp(550, 4, "4.0.15", "2345-12500-001"),
    _sp(560, 4, "4.0.15", "2345-12560-001"),
    _sp(600, 6, "3.1.8", "2345-11600-001"),
    _sp(601, 6, "3.1.8", "2345-11605-001"),
    _sp(650, 6, "4.0.15", "2345-12600-001"),
    _sp(670, 6, "4.0.15", "2345-12670-001"),
    _ss(4000, 1, "3.1.8", "2201-06642-001"),
    _ss(5000, 1, "4.0.15", "3111-30900-001"),
    _ss(6000, 1, "4.0.15", "3111-15600-001"),
    _ss(7000, 1, "4.0.15", "3111-40000-001"),
    Model("SSDUO", "SoundStation Duo", "SSDuo", 1, "4.0.15", "3111-19000-001", ("SOUNDSTATIONDUO",)),
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
    _vvx(1500, 6, "5.9.7", "2345-17960-001"),
    Model("TRIO8800", "RealPresence Trio 8800", "Trio_8800", 1, "7.2.6", "3111-65290-001",
          ("Trio_8800", "TRIO_8800")),
    Model("TRIO8500", "RealPresence Trio 8500", "Trio_8500", 1, "7.2.6", "", ("Trio_8500", "TRIO_8500")),
    Model("TRIO8300", "RealPresence Trio 8300", "Trio_8300", 1, "7.2.6", "", ("Trio_8300", "TRIO_8300")),
    Model("E100", "Poly Edge E100", "Edge_E100", 2, "8.1.3", "", ("EDGEE100", "Edge_E100")),
    Model("E220", "Poly Edge E220", "Edge_E220", 4, "8.1.3", "", ("EDGEE220", "Edge_E220")),
    Model("E300", "Poly Edge E300", "Edge_E300", 8, "8.1.3", "", ("EDGEE300", "Edge_E300")),
    Model("E320", "Poly Edge E320", "Edge_E320", 8, "8.1.3", "", ("EDGEE320", "Edge_E320")),
    Model("E350", "Poly Edge E350", "Edge_E350", 8, "8.1.3", "", ("EDGEE350", "Edge_E350")),
    Model("E400", "Poly Edge E400", "Edge_E400", 16, "8.1.3", "", ("EDGEE400", "Edge_E400")),
    Model("E450", "Poly Edge E450", "Edge_E450", 16, "8.1.3", "", ("EDGEE450", "Edge_E450")),
    Model("E500", "Poly Edge E500", "Edge_E500", 16, "8.1.3", "", ("EDGEE500", "Edge_E500")),
    Model("E550", "Poly Edge E550", "Edge_E550", 16, "8.1.3", "", ("EDGEE550", "Edge_E550")),
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
        model = replace(self.models[key], **changes)
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
