"""The loaded inventory as frozen dataclasses, and ``Problem``, what every check reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from polygen.catalog import Catalog, Model
from polygen.safetext import visible
from polygen.tzrules import TimeRules, rules_for


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        sev = "warning: " if self.severity == "warning" else ""
        if not self.file:  # about the firmware or the catalog, not a place in the inventory
            text = f"{sev}{self.message}"
        else:
            where = f"{self.file}:{self.line}" if self.line else self.file
            text = f"{where}: {self.path}: {sev}{self.message}" if self.path else f"{where}: {sev}{self.message}"
        return visible(text, newlines=True)  # one line, whatever a name it quotes holds

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message,
                "severity": self.severity}


@dataclass(frozen=True)
class Polling:
    """``prov.polling.*``. Without ``polling:`` in the inventory the phones spread their nightly
    check over 01:00-05:00 (``random``), instead of hitting the server all at once."""

    mode: str = "random"
    time: str = "01:00"
    period: int = 86400
    time_random_end: str | None = "05:00"


@dataclass(frozen=True)
class ProvAuth:
    """HTTP basic auth for provisioning files; ``previous`` stays valid during a rotation."""

    user: str
    password: str = field(repr=False)
    previous: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def accepted(self) -> tuple[tuple[str, str], ...]:
        return ((self.user, self.password),) + self.previous


@dataclass(frozen=True)
class Dialing:
    """``site.dialing``: what the generated digit map must dial besides the extensions."""

    emergency: tuple[str, ...] = ()
    outside_prefix: str | None = None
    feature_codes: tuple[str, ...] = ()
    digitmap: str | None = None  # the admin's own map, used instead of a generated one


@dataclass(frozen=True)
class Site:
    name: str
    provisioning_url: str
    sip_server: str  # host
    sip_port: int | None
    timezone: str
    ntp_server: str | None
    polling: Polling
    settings: tuple[tuple[str, str], ...]
    auth: ProvAuth | None = None
    dialing: Dialing = Dialing()
    voicemail: str | None = None  # what the Messages key dials
    admin_password: str | None = field(default=None, repr=False)
    overrides: str = "keep"  # the phones' own changes at a reboot: "keep" or "discard" (polygen.overrides)
    # the digit map the site files carry (generated, or site.dialing.digitmap): set by load()
    digitmap: str | None = None
    digitmap_timeout: str | None = None


@dataclass(frozen=True)
class Extension:
    ext: str
    first_name: str
    last_name: str
    secret: str = field(repr=False)
    mailbox: str
    directory: bool
    display_name: str
    label: str
    shared: bool = False  # a shared line: it may be on several phones (reg.N.type="shared")


@dataclass(frozen=True)
class Key:
    """One key after a phone's lines (polygen.linekeys)."""

    kind: str  # "blf" (watch an extension, pick up its calls) or "speed_dial"
    target: str  # the extension (blf) or the number to dial (speed_dial)
    label: str = ""  # speed_dial: the text on the key ("" = the contact's name, else the number)


@dataclass(frozen=True)
class Phone:
    mac: str  # 12 lower-case hex digits
    model: str  # catalog key
    lines: tuple[str, ...]
    settings: tuple[tuple[str, str], ...]
    timezone: str | None = None
    keys: tuple[Key, ...] = ()


@dataclass(frozen=True)
class Contact:
    """An entry of the company directory that is not an extension (an outside number)."""

    number: str  # the directory's contact field (ct): digits or a SIP URI
    first_name: str = ""
    last_name: str = ""
    label: str = ""


@dataclass(frozen=True)
class Inventory:
    site: Site
    extensions: dict[str, Extension]  # by ext, in ext order
    phones: tuple[Phone, ...]  # in MAC order
    catalog: Catalog
    warnings: tuple[Problem, ...] = ()
    sources: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()  # in file order
    # warnings only `polygen check` prints (the phones' admin password): a site may live with
    # them, so builds and the watcher do not repeat them on every run
    advice: tuple[Problem, ...] = ()
    site_file: str = ""  # the file holding site: (messages name it)

    def model(self, phone: Phone) -> Model:
        return self.catalog.models[phone.model]

    def models_in_use(self) -> list[Model]:
        keys = sorted({p.model for p in self.phones})
        return [self.catalog.models[k] for k in keys]

    def time_rules(self, zone: str) -> TimeRules:
        return rules_for(zone, _rules_year())

    def secrets(self) -> set[str]:
        """Every password the inventory holds: SIP secrets, provisioning and admin passwords."""
        found = {e.secret for e in self.extensions.values() if e.secret}
        if self.site.auth is not None:
            found.add(self.site.auth.password)
            found.update(pw for _, pw in self.site.auth.previous)
        if self.site.admin_password:
            found.add(self.site.admin_password)
        return found


def _rules_year() -> int:
    # DST rules are derived from this year's and next year's transitions (see tzrules).
    env = os.environ.get("POLYGEN_TZ_YEAR")
    return int(env) if env and env.isdigit() else datetime.now(timezone.utc).year


def mwi_address(site: Site, mailbox: str) -> str:
    """``msg.mwi.N.subscribe``: the mailbox at the SIP server, as the line registers there."""
    if "@" in mailbox:
        return mailbox
    host = f"[{site.sip_server}]" if ":" in site.sip_server else site.sip_server
    return f"{mailbox}@{host}" + (f":{site.sip_port}" if site.sip_port else "")
