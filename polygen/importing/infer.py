"""``infer(tree) -> Inferred``: an inventory whose build gives every phone the configuration it had.

From each phone's effective parameters (``tree``):

1. First-class keys. Registrations ``reg.N.*`` become extensions and the phone's lines (while
   they name an extension with a password); the directory gives the extensions their names
   (by contact = extension, else by display name = "first last", which makes a mailbox) and the
   rest becomes ``contacts:``. The site takes what most phones have: ``sip_server``, NTP server,
   polling, provisioning credentials (``device.prov.*``), and the time zone: the IANA zone whose
   rules give exactly the phone's ``tcpIpApp.sntp.*`` values (a phone in another zone gets its
   own ``timezone``). A model's release comes from ``firmware/<release>/`` in its firmware path
   when it differs from the catalog (``models:``).
2. Settings. With those keys, what polygen would write for each phone is computed (the same
   ``plan.phone_sections``/``site_sections`` a build uses, plus the release's SIP 3.x files from
   the firmware directory). Every parameter whose effective value differs (``compare``: an unset
   parameter counts as its firmware default) is kept as a setting: a site setting when every
   phone has the same value and polygen does not write it into the phones' own files, else a
   setting of the phone. A parameter polygen writes that the phone never had is pinned to its
   default, so the phone does not change.
3. The report: every parameter not mapped onto a first-class key and where it went (site
   settings, a phone's settings, built in because polygen writes the same value, the firmware
   default, the release's files), and every file no phone read, with the reason.

Longer than 600 lines: the three steps work on one ``_Inference`` state (the phones' parameters,
the site's majority values, what polygen writes); split, they would pass that state between modules.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, available_timezones

from polygen.catalog import Catalog
from polygen.dialcheck import DIGITMAP, HANDLING, TIMEOUT, with_digitmap
from polygen.firmware import read_releases
from polygen.importing.commit import Draft, Entry
from polygen.importing.compare import effective
from polygen.importing.defaults import _DST, default, release_params
from polygen.importing.dialing import as_yaml, dialing_for, dials_everything
from polygen.importing.keys import own_speed_dials, phone_keys
from polygen.importing.tree import PhoneConfig, Tree
from polygen.inventory import (
    EXT_RE,
    MAX_ADMIN_PASSWORD,
    MAX_MWI_NUMBER,
    Contact,
    Dialing,
    Extension,
    Inventory,
    Phone,
    Polling,
    Problem,
    ProvAuth,
    Site,
    mwi_address,
)
from polygen.plan import config_files, legacy_polling, phone_sections, site_sections
from polygen.tzrules import UnknownZone

_PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.?$|^[0-9a-fA-F:.]+$")
_HHMM_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_RELEASE_RE = re.compile(r"(?:^|/)([0-9]+\.[0-9][0-9A-Za-z._\-]{0,30})/[^/]+$")
# a password's name; its ".set" flag (device.auth.localAdminPassword.set) is no secret
_SECRET_NAME_RE = re.compile(r"(?:password|passwd|secret)(?!.*\.set$)", re.IGNORECASE)
_VOICEMAIL_RE = re.compile(r"^(?:[0-9]+|[*#][0-9*#]*)$")  # inventory: what site.voicemail takes
MAX_NAME_BYTES = 40
TIME_KEYS = ("tcpIpApp.sntp.gmtOffset", *_DST)
# parameters polygen computes from first-class keys, and those it writes with fixed values
_LINE_FIRST_CLASS = ("address", "auth.userId", "auth.password", "displayName", "label", "type", "server.1.address",
                     "server.1.port")
_INDEXED_FIRST_CLASS_RE = re.compile(r"^(?:msg\.mwi\.[1-9][0-9]*\.(?:subscribe|callBackMode|callBack)"
                                     r"|attendant\.resourceList\.[1-9][0-9]*\.(?:address|label|type)"
                                     r"|lineKey\.[1-9][0-9]*\.(?:category|index))$")
FIRST_CLASS = frozenset({"voIpProt.server.1.address", "voIpProt.server.1.port", "tcpIpApp.sntp.address",
                         "prov.polling.mode", "prov.polling.period", "prov.polling.time",
                         "prov.polling.timeRandomEnd", "device.prov.user", "device.prov.password",
                         "dialplan.digitmap", "device.auth.localAdminPassword", *TIME_KEYS})
BUILT_IN = frozenset({"tcpIpApp.sntp.gmtOffset.overrideDHCP", "tcpIpApp.sntp.address.overrideDHCP",
                      "prov.polling.enabled", "log.render.file", "log.render.file.upload.period",
                      "log.render.file.upload.append", "device.set", "device.prov.user.set",
                      "device.prov.password.set", "device.auth.localAdminPassword.set", "dialplan.digitmap.timeOut",
                      "dialplan.impossibleMatchHandling", "dir.local.readonly", "lineKey.reassignment.enabled"})
# zones tried first, so a match names the zone people use (America/New_York, not America/Detroit)
PREFERRED_ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/Halifax", "America/St_Johns", "America/Toronto",
    "America/Vancouver", "America/Mexico_City", "America/Bogota", "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires", "America/Santiago", "Europe/London", "Europe/Dublin", "Europe/Lisbon",
    "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Brussels",
    "Europe/Zurich", "Europe/Vienna", "Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Warsaw",
    "Europe/Prague", "Europe/Athens", "Europe/Helsinki", "Europe/Istanbul", "Europe/Kyiv", "Europe/Moscow",
    "Africa/Cairo", "Africa/Johannesburg", "Africa/Lagos", "Africa/Nairobi", "Asia/Jerusalem", "Asia/Dubai",
    "Asia/Karachi", "Asia/Kolkata", "Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Singapore",
    "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Manila", "Asia/Seoul", "Asia/Tokyo",
    "Australia/Perth", "Australia/Darwin", "Australia/Adelaide", "Australia/Brisbane", "Australia/Sydney",
    "Australia/Melbourne", "Pacific/Auckland", "UTC",
)


def kind(name: str) -> str | None:
    """'first-class', 'built-in' or None for a parameter name."""
    m = re.match(r"^reg\.[1-9][0-9]*\.(.+)$", name)
    if m:
        return "first-class" if m.group(1) in _LINE_FIRST_CLASS else None
    if name in FIRST_CLASS or _INDEXED_FIRST_CLASS_RE.match(name):
        return "first-class"
    return "built-in" if name in BUILT_IN else None


@dataclass
class Placement:
    """Where one parameter (with one value) went, for the phones that had it."""

    name: str
    value: str
    destination: str  # site settings | phone settings | built in | firmware default | release file
    phones: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the files it came from ("" when it was unset)

    def shown_value(self) -> str:
        return "********" if _SECRET_NAME_RE.search(self.name) and self.value else self.value

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.shown_value(), "destination": self.destination,
                "phones": self.phones, "sources": [s or "(unset: the firmware default)" for s in self.sources]}


@dataclass
class Inferred:
    draft: Draft
    placements: list[Placement]
    unused: list[tuple[str, str]]
    problems: list[Problem]
    inventory: Inventory  # the inventory as inferred (for the counts and checks)


def _majority(values):
    """The most common value, the first seen on a tie; None when there is none."""
    values = [v for v in values if v not in (None, "")]
    if not values:
        return None
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def _as_polling(p: dict) -> Polling:
    """``site.polling`` as ``inventory.load`` reads it (no time_random_end unless written)."""
    return Polling(p["mode"], p["time"], p.get("period", Polling.period), p.get("time_random_end"))


def _split_name(display: str) -> tuple[str, str]:
    first, _, last = display.rpartition(" ")
    return (first, last) if first else (last, "")


class _Zones:
    """IANA zone for a phone's time parameters: the first zone whose rules give exactly them."""

    def __init__(self, rules):
        self.rules = rules  # zone -> TimeRules (Inventory.time_rules, so the build's year)
        self.cache: dict[tuple, str | None] = {}

    def _candidates(self, values: dict[str, str | None]):
        """The preferred zones, then all others; only those whose offsets on the first of each
        month fit the phone's (standard offset, DST or not, the months DST starts and stops):
        computing a zone's rules is slow, this is not."""
        offset = values.get(TIME_KEYS[0]) or ""
        if not re.fullmatch(r"-?[0-9]+", offset):
            return
        dst = values.get("tcpIpApp.sntp.daylightSavings.enable") == "1"
        months = (values.get("tcpIpApp.sntp.daylightSavings.start.month"),
                  values.get("tcpIpApp.sntp.daylightSavings.stop.month"))
        year = datetime.now(timezone.utc).year
        others = sorted(z for z in available_timezones() if z not in PREFERRED_ZONES and "/" in z
                        and not z.startswith(("SystemV/", "US/", "posix", "right/")))
        for z in (*PREFERRED_ZONES, *others):
            zi = ZoneInfo(z)
            # at local midnight of the 1st: a change on the 1st (at 02:00) falls into its month
            offs = [int(datetime(year + m // 12, m % 12 + 1, 1, tzinfo=zi).utcoffset().total_seconds())
                    for m in range(13)]
            std = min(offs)
            if std != int(offset) or (max(offs) != std) != dst:
                continue
            if dst:
                starts = {str(m + 1) for m in range(12) if offs[m] == std and offs[m + 1] > std}
                stops = {str(m + 1) for m in range(12) if offs[m] > std and offs[m + 1] == std}
                if months[0] not in starts or months[1] not in stops:
                    continue
            yield z

    def zone(self, values: dict[str, str | None]) -> str | None:
        key = tuple(values.get(k) for k in TIME_KEYS)
        if key not in self.cache:
            self.cache[key] = next((z for z in self._candidates(values) if self._matches(z, values)), None)
        return self.cache[key]

    def _matches(self, zone: str, values) -> bool:
        try:
            params = self.rules(zone).params()
        except UnknownZone:
            return False
        return all(values.get(k) == v for k, v in params.items() if k in TIME_KEYS)


class _Inference:
    def __init__(self, tree: Tree, site_name: str, provisioning_url: str | None, firmware: Path | None):
        self.tree = tree
        self.firmware = Path(firmware) if firmware is not None else None
        self.problems: list[Problem] = list(tree.problems)
        self.catalog = Catalog()
        self.models: dict[str, dict] = {}
        self._releases()
        self.phones = tree.phones
        self.base = {pc.mac: self._release_params(pc) for pc in self.phones}
        self.site_name = site_name
        self.provisioning_url = provisioning_url
        self.replaced: set[str] = set()  # parameters the import lets polygen change (said in a warning)

    def warn(self, file: str, message: str) -> None:
        self.problems.append(Problem(file, None, "", message, "warning"))

    def error(self, file: str, message: str) -> None:
        self.problems.append(Problem(file, None, "", message))

    def model(self, pc: PhoneConfig):
        return self.catalog.models[pc.model.key]

    def dialect(self, pc: PhoneConfig) -> str:
        return self.model(pc).dialect

    def eff(self, pc: PhoneConfig, name: str) -> str | None:
        return effective(pc.params, name, self.dialect(pc), self.base[pc.mac])

    # ------------------------------------------------------------ models and releases
    def _releases(self) -> None:
        seen: dict[str, set[str]] = {}
        for pc in self.tree.phones:
            m = _RELEASE_RE.search(pc.master.get("APP_FILE_PATH", ""))
            seen.setdefault(pc.model.key, set()).add(m.group(1) if m else None)
        for key, releases in seen.items():
            if len(releases) == 1 and None not in releases:
                (rel,) = releases
                if rel != self.catalog.models[key].firmware:
                    self.catalog.replace(key, firmware=rel)
                    self.models[key] = {"firmware": rel}

    def _release_params(self, pc: PhoneConfig) -> dict[str, str]:
        model = self.model(pc)
        releases = read_releases(self.firmware, [model.firmware])
        names = [e.rsplit("/", 1)[-1] for e in config_files(model, releases).split(", ")
                 if e.startswith("firmware/")]
        return release_params(self.firmware, model.firmware, names)

    # ------------------------------------------------------------ extensions and lines
    def lines(self) -> tuple[dict[str, list[str]], dict[str, dict]]:
        lines: dict[str, list[str]] = {}
        exts: dict[str, dict] = {}
        for pc in self.phones:
            own: list[str] = []
            i = 1
            while addr := pc.params.get(f"reg.{i}.address", ""):
                why = None
                if i > self.model(pc).lines:
                    why = f"the {pc.model.name} has {self.model(pc).lines} lines"
                elif not EXT_RE.fullmatch(addr):
                    why = f"'{addr}' is not an extension polygen can name (letters, digits, '.', '+', '-')"
                elif addr in own:
                    why = f"extension {addr} is already line {own.index(addr) + 1}"
                elif not pc.params.get(f"reg.{i}.auth.password"):
                    why = "it has no password (reg.{i}.auth.password), which every extension needs".format(i=i)
                if why:
                    self.warn(pc.sources.get(f"reg.{i}.address", ""),
                              f"phone {pc.mac}: reg.{i} and later registrations kept as raw settings: {why}")
                    break
                own.append(addr)
                if addr in exts and pc.params.get(f"reg.{i}.type") == "shared":
                    exts[addr]["shared"] = True
                if addr not in exts:
                    exts[addr] = {"secret": pc.params[f"reg.{i}.auth.password"],
                                  "display": pc.params.get(f"reg.{i}.displayName", ""),
                                  "label": pc.params.get(f"reg.{i}.label", ""),
                                  "shared": pc.params.get(f"reg.{i}.type") == "shared"}
                i += 1
            lines[pc.mac] = own
        return lines, exts

    # ------------------------------------------------------------ the directory
    def directory(self, exts: dict[str, dict]) -> tuple[dict[str, dict], list[dict]]:
        """Names for the extensions ({ext: directory item}) and the contacts."""
        items, seen = [], set()
        for it in self.tree.directory:
            k = tuple(sorted(it.fields.items()))
            if k not in seen:
                seen.add(k)
                items.append(it)
        matched: dict[str, object] = {}
        rest = []
        for it in items:
            ct = it.fields.get("ct", "")
            if ct in exts and ct not in matched:
                matched[ct] = it
            else:
                rest.append(it)
        contacts_items = []
        for it in rest:
            name = " ".join(x for x in (it.fields.get("fn", ""), it.fields.get("ln", "")) if x)
            cands = [e for e, d in exts.items() if e not in matched and name and d["display"] == name]
            if len(cands) == 1 and it.fields.get("ct"):
                matched[cands[0]] = it
            else:
                contacts_items.append(it)
        for ext, it in matched.items():
            dropped = sorted(set(it.fields) - {"fn", "ln", "ct"})
            if dropped:
                self.warn(it.file, f"directory entry of extension {ext}: <{'>, <'.join(dropped)}> not kept "
                                   "(the directory lists an extension by its name and number)")
        contacts, numbers = [], {(it.fields.get("ct") or "") for it in matched.values()}
        for it in contacts_items:
            f = it.fields
            ct = f.get("ct", "")
            c = {"number": ct, "first_name": f.get("fn", ""), "last_name": f.get("ln", ""), "label": f.get("lb", "")}
            why = None
            if not ct or ct != ct.strip() or len(ct) > 255:
                why = "no usable contact number <ct>"
            elif ct in numbers:
                why = f"its number {ct} is listed already"
            elif not (c["first_name"] or c["last_name"] or c["label"]):
                why = "it has no name or label"
            elif any(len(v.encode()) > MAX_NAME_BYTES for k, v in c.items() if k != "number"):
                why = f"a name longer than {MAX_NAME_BYTES} bytes"
            if why:
                self.warn(it.file, f"directory entry {ct or '(no number)'} not kept: {why}")
                continue
            numbers.add(ct)
            dropped = sorted(set(f) - {"fn", "ln", "ct", "lb"})
            if dropped:
                self.warn(it.file, f"directory entry {ct}: <{'>, <'.join(dropped)}> not kept (contacts have a "
                                   "number, names and a label)")
            contacts.append({k: v for k, v in c.items() if v or k == "number"})
        return matched, contacts

    # ------------------------------------------------------------ the site
    def site(self) -> tuple[dict, str | None, dict[str, str | None]]:
        """The site's first-class keys, its time zone and each phone's (None: no zone matches)."""
        ph = self.phones
        servers = [self.eff(pc, "voIpProt.server.1.address") or pc.params.get("reg.1.server.1.address", "")
                   for pc in ph]
        host = _majority(servers)
        site: dict = {"name": self.site_name}
        url = self.provisioning_url or self._url_from_phones()
        if url is None:
            self.error("--provisioning-url", "no provisioning URL in the phones' configuration "
                                             "(device.prov.serverName): give it with --provisioning-url URL")
        site["provisioning_url"] = url or ""
        if host is None or not _HOST_RE.match(host):
            self.error(str(self.tree.root),
                       "no SIP server a phone registers to (voIpProt.server.1.address, reg.1.server.1.address)"
                       if host is None else f"SIP server '{host}' is not a host name or IP address")
            host = host or ""
        port = _majority(self.eff(pc, "voIpProt.server.1.port") for pc, s in zip(ph, servers) if s == host)
        if port and port.isdigit() and 0 < int(port) < 65536:
            host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        site["sip_server"] = host
        zones = _Zones(Inventory(None, {}, (), self.catalog).time_rules)  # the rules a build will use
        per_phone = {pc.mac: zones.zone({k: self.eff(pc, k) for k in TIME_KEYS}) for pc in ph}
        zone = _majority(per_phone.values())
        for pc in ph:
            if per_phone[pc.mac] is None:
                self.warn(pc.sources.get("tcpIpApp.sntp.gmtOffset", pc.master_file),
                          f"phone {pc.mac}: its time settings (tcpIpApp.sntp.gmtOffset {self.eff(pc, TIME_KEYS[0])!r},"
                          " daylightSavings.*) match no IANA time zone; they are kept as raw settings")
        site["timezone"] = zone or "UTC"
        ntp = _majority(self.eff(pc, "tcpIpApp.sntp.address") for pc in ph)
        if ntp and _HOST_RE.match(ntp):
            site["ntp_server"] = ntp
        polling = self._polling()
        if _as_polling(polling) != Polling():  # the default needs no words
            site["polling"] = polling
        auth = self._auth()
        if auth:
            site["provisioning_auth"] = {"user": auth[0]}
        return site, zone, per_phone

    def _url_from_phones(self) -> str | None:
        name = _majority(self.eff(pc, "device.prov.serverName") for pc in self.phones)
        if not name:
            return None
        # credentials in the name stay out of site.yaml (they are device.prov.user/password's job)
        if "://" in name:
            parts = urlsplit(name)
            host = parts.netloc.rsplit("@", 1)[-1]
            return urlunsplit((parts.scheme, host, parts.path or "/", "", "")) if host else None
        name = name.rsplit("@", 1)[-1]
        kind_ = _majority(self.eff(pc, "device.prov.serverType") for pc in self.phones) or "2"
        scheme = {"0": "ftp", "ftp": "ftp", "1": "tftp", "tftp": "tftp", "3": "https", "https": "https",
                  "4": "ftps", "ftps": "ftps"}.get(kind_.lower(), "http")
        return f"{scheme}://{name.rstrip('/')}/"

    def _polling(self) -> dict:
        # the UC phones' site file says what the site does: SIP 3.2 and older cannot poll at
        # random, and polygen gives them a fixed time from the window instead (plan.legacy_polling)
        ph = [pc for pc in self.phones if self.dialect(pc) == "uc"] or self.phones
        if ph is self.phones and self._legacy_spread():
            return {"mode": Polling.mode, "time": Polling.time, "time_random_end": Polling.time_random_end}
        mode = _majority(self.eff(pc, "prov.polling.mode") for pc in ph)
        t = _majority(self.eff(pc, "prov.polling.time") for pc in ph)
        period = _majority(self.eff(pc, "prov.polling.period") for pc in ph)
        out = {"mode": mode if mode in ("abs", "rel", "random") else "abs",
               "time": t if t and _HHMM_RE.match(t) else Polling.time}
        if period and period.isdigit() and 3600 <= int(period) <= 31536000 and int(period) != Polling.period:
            out["period"] = int(period)
        if out["mode"] == "random":
            end = _majority(self.eff(pc, "prov.polling.timeRandomEnd") for pc in ph if self.dialect(pc) == "uc")
            out["time_random_end"] = end if end and _HHMM_RE.match(end) else out["time"]
        return out

    def _legacy_spread(self) -> bool:
        """Do these SIP 3.2-or-older phones poll as polygen's default spreads them?"""
        probe = Inventory(Site("", "", "", None, "UTC", None, Polling(), ()), {}, (), self.catalog)
        return all(self.dialect(pc) == "sip3" and self.eff(pc, "prov.polling.mode") == "abs"
                   and self.eff(pc, "prov.polling.period") == str(Polling.period)
                   and legacy_polling(probe, Phone(pc.mac, pc.model.key, (), ()))
                   == [("prov.polling.time", self.eff(pc, "prov.polling.time"))] for pc in self.phones)

    def _auth(self) -> tuple[str, str] | None:
        creds = {tuple(self.eff(pc, k) for k in ("device.set", "device.prov.user.set", "device.prov.password.set",
                                                  "device.prov.user", "device.prov.password"))
                 for pc in self.phones}
        if len(creds) != 1:
            return None
        (c,) = creds
        if c[:3] != ("1", "1", "1") or not c[3] or not _USER_RE.match(c[3]) or not c[4] or ":" in c[4] \
                or len(c[4]) > 256:
            return None
        return c[3], c[4]


    # ------------------------------------------------------------ keys, voicemail, admin password, dialling
    def own_directories(self) -> dict[str, list[tuple[int, dict]]]:
        """Speed dials from each phone's own directory (keys.own_speed_dials); a directory of any
        other shape has its entries added to the company directory, as polygen serves only one."""
        company = list(self.tree.directory)
        out = {}
        for mac, (rel, items) in self.tree.own_directories.items():
            speed = own_speed_dials(items, company)
            if speed is not None:
                out[mac] = speed
                continue
            self.warn(rel, f"phone {mac} has a directory of its own; polygen serves one company directory, to "
                           "which its entries are added")
            self.tree.directory += items
        return out

    def voicemail(self, lines: dict[str, list[str]], site: Site) -> tuple[str | None, dict[str, str]]:
        """``site.voicemail`` and each extension's mailbox, when every line of every phone subscribes
        to its mailbox at the SIP server and calls one number from its Messages key, as polygen
        writes them; else (None, {}) and the parameters stay raw settings."""
        numbers, boxes = set(), {}
        for pc in self.phones:
            for i, ext in enumerate(lines[pc.mac], 1):
                p = f"msg.mwi.{i}."
                subscribe = self.eff(pc, p + "subscribe") or ""
                box, at, _ = subscribe.rpartition("@")
                if self.eff(pc, p + "callBackMode") != "contact" or not at or \
                        mwi_address(site, box) != subscribe or boxes.setdefault(ext, box) != box:
                    return None, {}
                numbers.add(self.eff(pc, p + "callBack"))
        number = numbers.pop() if len(numbers) == 1 else None
        if not number or not _VOICEMAIL_RE.match(number) or len(number) > MAX_MWI_NUMBER:
            return None, {}
        return number, boxes

    def admin_password(self) -> str | None:
        """``site.admin_password``: the one every UC phone is given (device.auth.*), if any."""
        values = {tuple(self.eff(pc, k) for k in ("device.set", "device.auth.localAdminPassword.set",
                                                   "device.auth.localAdminPassword"))
                  for pc in self.phones if self.dialect(pc) == "uc"}
        if len(values) != 1:
            return None
        (flags_set, password_set, password), = values
        if (flags_set, password_set) != ("1", "1") or not password or len(password) > MAX_ADMIN_PASSWORD \
                or not all(" " <= c <= "~" for c in password):
            return None
        return password

    def dialing(self, site: Site, extensions) -> Dialing:
        """``site.dialing`` (importing.dialing) from the phones' digit maps."""
        maps = {pc.mac: self.eff(pc, DIGITMAP) for pc in self.phones}
        if all(maps[pc.mac] == default(DIGITMAP, self.dialect(pc)) for pc in self.phones):
            # none was written: keep it so, unless Polycom's map cannot dial the site's numbers
            kept = {(maps[pc.mac], self.eff(pc, TIMEOUT), self.eff(pc, HANDLING)) for pc in self.phones}
            if all(dials_everything(*k, site, extensions) for k in kept):
                return Dialing(digitmap="")
            self.warn(str(self.tree.root), "the phones have no digit map, and Polycom's default cannot dial every "
                                           "extension (it sends some early): the import lets polygen write one "
                                           "that does (README, \"Dialling\")")
            self.replaced.update((DIGITMAP, TIMEOUT, HANDLING))
            return Dialing()
        return dialing_for(_majority(maps.values()) or "", site, extensions)


def infer(tree: Tree, *, site_name: str = "Imported site", provisioning_url: str | None = None,
          firmware: Path | None = None, source: str = "") -> Inferred:
    inf = _Inference(tree, site_name, provisioning_url, firmware)
    lines, ext_data = inf.lines()
    speed = inf.own_directories()
    matched, contacts = inf.directory(ext_data)
    site, zone, per_phone = inf.site() if tree.phones else ({}, None, {})
    auth = inf._auth() if tree.phones else None
    pol = site.get("polling", {})
    sip = site.get("sip_server", "")
    host, _, port = sip.rpartition(":") if re.search(r":[0-9]+$", sip) else (sip, "", "")
    inv_site = Site(site.get("name", ""), site.get("provisioning_url", ""), host.strip("[]"),
                    int(port) if port else None, site.get("timezone", "UTC"), site.get("ntp_server"),
                    _as_polling(pol) if pol else Polling(), (), ProvAuth(*auth) if auth else None)
    voicemail, mailboxes = inf.voicemail(lines, inv_site) if tree.phones else (None, {})
    admin = inf.admin_password() if tree.phones else None

    # the extensions as the inventory will have them
    draft = Draft(comment=f"Imported from {source or tree.root} by polygen import tree.")
    extensions: dict[str, Extension] = {}
    for ext, d in ext_data.items():
        it = matched.get(ext)
        if it is not None:
            first, last, mailbox = it.fields.get("fn", ""), it.fields.get("ln", ""), it.fields.get("ct") or ext
        else:
            first, last = _split_name(d["display"])
            if len(first.encode()) > MAX_NAME_BYTES or len(last.encode()) > MAX_NAME_BYTES:
                first, last = "", ""
            mailbox = mailboxes.get(ext, ext)  # the mailbox its message-waiting light follows
        composed = " ".join(x for x in (first, last) if x)
        entry: dict = {"ext": ext, "first_name": first}
        if last:
            entry["last_name"] = last
        if d["display"] and d["display"] != composed:
            entry["display_name"] = d["display"]
        if mailbox != ext:
            entry["mailbox"] = mailbox
        if d["label"] and d["label"] != ext:
            entry["label"] = d["label"]
        if it is None:
            entry["directory"] = False
        if d["shared"]:
            entry["shared"] = True  # reg.N.type="shared": a line that may be on several phones
        draft.entries.append(Entry("extensions", entry))
        draft.secrets[ext] = d["secret"]
        extensions[ext] = Extension(ext, first, last, d["secret"], mailbox, it is not None,
                                    entry.get("display_name") or composed or ext, entry.get("label", ext),
                                    shared=d["shared"])

    # the site's dialling, voicemail and admin password; the digit map a build would write
    inv_site = dataclasses.replace(inv_site, voicemail=voicemail, admin_password=admin)
    if tree.phones and not any(p.severity == "error" for p in inf.problems):  # else nothing is written
        inv_site = dataclasses.replace(inv_site, dialing=inf.dialing(inv_site, extensions))
    try:
        inv_site = with_digitmap(inv_site, extensions)
    except ValueError:  # no map can dial every number: inventory.load says why
        pass
    for key, value in (("voicemail", voicemail), ("dialing", as_yaml(inv_site.dialing))):
        if site and value is not None:
            site[key] = value

    # the phones, with the keys that give them what they had
    phones = [Phone(pc.mac, pc.model.key, tuple(lines[pc.mac]), (),
                    per_phone[pc.mac] if per_phone.get(pc.mac) not in (None, zone) else None)
              for pc in tree.phones]
    inv = Inventory(inv_site, extensions, tuple(phones), inf.catalog,
                    contacts=tuple(Contact(c["number"], c.get("first_name", ""), c.get("last_name", ""),
                                           c.get("label", "")) for c in contacts))
    for n, pc in enumerate(tree.phones):
        own_dir = tree.own_directories.get(pc.mac)
        keys = phone_keys(inv, phones[n], pc.params, speed.get(pc.mac), own_dir[1] if own_dir else None)
        if keys is None:
            inf.warn(own_dir[0] if pc.mac in speed else pc.master_file,
                     f"phone {pc.mac}: its busy lamp fields, speed dials or key order are not what keys: would "
                     "give it; the parameters are kept as raw settings" +
                     (", its own directory's speed dials are not kept" if pc.mac in speed else ""))
        elif keys:
            phones[n] = dataclasses.replace(phones[n], keys=keys)
    inv = dataclasses.replace(inv, phones=tuple(phones))
    residual: dict[str, dict[str, str]] = {}
    writes: dict[str, dict[str, str]] = {}
    phone_params: set[str] = set()
    for pc, phone in zip(tree.phones, phones):
        dialect = inf.dialect(pc)
        own = [kv for _, params in phone_sections(inv, phone) for kv in params]
        phone_params.update(k for k, _ in own)
        wrote = writes[pc.mac] = {}
        for k, v in own + [kv for _, params in site_sections(inv, dialect) for kv in params]:
            wrote.setdefault(k, v)
        base = inf.base[pc.mac]
        r = residual[pc.mac] = {}
        for k in sorted((set(pc.params) | set(wrote)) - inf.replaced):
            before = effective(pc.params, k, dialect, base)
            after = effective(wrote, k, dialect, base)
            if before != after:
                if before is None:  # cannot happen for the parameters defaults.py lists
                    inf.error(pc.master_file, f"phone {pc.mac}: polygen writes {k}, which the phone did not have "
                                              "and whose default is unknown")
                    continue
                r[k] = before
    # a site setting: a value every phone ends up with, which some phone needs written; a phone
    # that has it anyway (from a release file or as its default) is not changed by it
    site_settings: dict[str, str] = {}
    for k in sorted({k for r in residual.values() for k in r} - phone_params):
        v = _majority(r[k] for r in residual.values() if k in r)
        if all(residual[pc.mac].get(k, inf.eff(pc, k)) == v for pc in tree.phones):
            site_settings[k] = v
    settings = {mac: {k: v for k, v in r.items() if k not in site_settings} for mac, r in residual.items()}
    for where, values in [("site", site_settings)] + [(f"phone {m}", s) for m, s in settings.items()]:
        for k, v in values.items():
            if not _PARAM_RE.match(k) or _BAD_CHARS_RE.search(v):
                inf.error(where, f"parameter {k}: its name or value cannot be kept in the inventory "
                                 "(names are letters, digits and dots; values without control characters)")
    if site:
        if site_settings:
            site["settings"] = dict(sorted(site_settings.items()))
        draft.site = site
        if auth:
            draft.provisioning_password = auth[1]
        draft.admin_password = admin  # into the secrets file, never site.yaml
    if inf.models:
        draft.models = inf.models
    for pc, phone in zip(tree.phones, phones):
        entry = {"mac": ":".join(pc.mac[i:i + 2] for i in range(0, 12, 2)), "model": pc.model.key,
                 "lines": list(phone.lines)}
        if phone.timezone:
            entry["timezone"] = phone.timezone
        if phone.keys:
            entry["keys"] = [{"blf": k.target} if k.kind == "blf" else
                             {"speed_dial": {"number": k.target, **({"label": k.label} if k.label else {})}}
                             for k in phone.keys]
        if settings[pc.mac]:
            entry["settings"] = dict(sorted(settings[pc.mac].items()))
        draft.entries.append(Entry("phones", entry))
    for c in contacts:
        draft.entries.append(Entry("contacts", c))
    placements = _placements(inf, residual, writes, site_settings)
    for p in placements:
        if p.destination in ("site settings", "phone settings") and _SECRET_NAME_RE.search(p.name) and p.value:
            inf.warn(", ".join(s for s in p.sources if s) or p.name,
                     f"{p.name} holds a password and is kept as a raw setting, in a file meant for git; "
                     "move the inventory's settings that hold passwords out of git, or change the password")
    return Inferred(draft, placements, tree.unused, inf.problems, inv)


def _placements(inf: _Inference, residual: dict[str, dict[str, str]], writes: dict[str, dict[str, str]],
                site_settings: dict[str, str]) -> list[Placement]:
    groups: dict[tuple[str, str, str], Placement] = {}
    for pc in inf.phones:
        r = residual[pc.mac]
        for k in sorted(set(pc.params) | set(r)):
            if k in r:
                dest, value = ("site settings" if k in site_settings else "phone settings"), r[k]
            elif kind(k) == "first-class":
                continue
            else:
                value = pc.params[k]
                dest = "built in" if k in writes[pc.mac] else \
                    "release file" if k in inf.base[pc.mac] else "firmware default"
            p = groups.setdefault((k, value, dest), Placement(k, value, dest))
            p.phones.append(pc.mac)
            src = pc.sources.get(k, "")
            if src not in p.sources:
                p.sources.append(src)
    order = {"site settings": 0, "phone settings": 1, "built in": 2, "release file": 3, "firmware default": 4}
    return sorted(groups.values(), key=lambda p: (order[p.destination], p.name, p.value))


def import_tree(root: Path, into: Path, *, models: dict[str, str] | None = None, default_model: str | None = None,
                site_name: str = "Imported site", provisioning_url: str | None = None,
                firmware: Path | None = None, secrets: Path | None = None, env: dict | None = None,
                dry_run: bool = False, progress=None):
    """Read the tree, infer the inventory, check it and (unless ``dry_run``) write it into ``into``.
    ``progress(done, total)``: after each phone's boot is played.

    Returns (Inferred, commit.Written or None); raises InventoryError with every problem.
    """
    from polygen.errors import InventoryError, PolygenError
    from polygen.importing.commit import check, commit
    from polygen.importing.tree import read_tree

    root = Path(root)
    if not root.is_dir():
        raise PolygenError(f"'{root}' is not a directory")
    tree = read_tree(root, models=models, default_model=default_model, progress=progress)
    inferred = infer(tree, site_name=site_name, provisioning_url=provisioning_url, firmware=firmware,
                     source=str(root))
    errors = [p for p in inferred.problems if p.severity == "error"]
    if errors:
        raise InventoryError(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in {root}; nothing written",
                             inferred.problems)
    if dry_run:
        _, _, warnings = check(inferred.draft, into, secrets=secrets, env=env)
        inferred.problems += warnings
        return inferred, None
    written = commit(inferred.draft, into, secrets=secrets, env=env)
    inferred.problems += written.warnings
    return inferred, written
