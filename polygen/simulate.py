"""Play a phone's boot against a provisioning server, as docs/polycom.md §1–§5 describe it.

``boot(transport, mac, user_agent)`` requests ``<mac>.cfg``, then ``000000000000.cfg`` with the
User-Agent, reads the master config and its per-model element, fetches the firmware, the
CONFIG_FILES in order (the first value of a parameter wins), the override files from
OVERRIDES_DIRECTORY (which beat CONFIG_FILES), both directory files, follows ``device.prov.*``
redirects and PUTs a boot log. The firmware is asked for as a phone does: its split image
``<part>.sip.ld`` first, then ``sip.ld``. The result is the list of requests and the effective
registration. ``local_change`` then plays a user changing settings on the phone: it PUTs the
phone's override file, as the phone does, for the next boot to fetch. The transport is pluggable:
HTTP for ``polygen simulate``, a directory for tests of a build.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from polygen import overrides
from polygen.errors import PolygenError
from polygen.safetext import MASK, mask, visible


class Transport(Protocol):
    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
        ...


@dataclass
class Request:
    method: str
    path: str
    status: int
    size: int
    note: str = ""

    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Line:
    index: int
    address: str
    user_id: str
    password: str = field(repr=False)
    display_name: str
    label: str
    server: str


@dataclass
class BootReport:
    mac: str
    user_agent: str
    requests: list[Request] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    master: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # effective values
    sources: dict[str, str] = field(default_factory=dict)  # parameter -> file it came from
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # "phone"/"web" -> what the file sets
    lines: list[Line] = field(default_factory=list)
    directory_entries: int = 0
    directory: list[dict[str, str]] = field(default_factory=list)  # the items of the directory in use
    redirects: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    firmware: str | None = None  # the image the phone got (None: none, it keeps what it runs)

    @property
    def ok(self) -> bool:
        return not self.failures


# ------------------------------------------------------------------ transports
class HttpTransport:
    """urllib over HTTP(S); ``user:password@`` in the base URL becomes Basic auth."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolygenError(f"'{base_url}' is not an http:// or https:// URL")
        self.auth = None
        if parts.username is not None:
            cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        self.timeout = timeout

    def same_server(self, target: str) -> bool:
        return self.redirect(target).base == self.base

    def redirect(self, target: str) -> "HttpTransport":
        """device.prov.serverName: a host, host/path or full URL; credentials carry over."""
        url = target if "://" in target else "http://" + target
        t = HttpTransport(url, self.timeout)
        t.auth = t.auth or self.auth
        return t

    def url(self, path: str) -> str:
        return path if re.match(r"^https?://", path) else urllib.parse.urljoin(self.base, path.lstrip("/"))

    def request(self, method, path, headers, body=None):
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=dict(headers))
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PolygenError(f"cannot reach {self.url(path)}: {reason}") from exc


class TreeTransport:
    """A built out/ tree answered like polygen's sidecar in static mode: User-Agent dispatch for
    000000000000.cfg, the shared directory for a <mac>-directory.xml the build did not make,
    uploads accepted, and the override files of the phones the build knows kept in memory and
    answered back as the build's ``site.overrides`` says."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.uploads: dict[str, bytes] = {}

    def request(self, method, path, headers, body=None):
        import json

        from polygen.useragent import dispatch

        path = path.lstrip("/")
        if m := overrides.PATH_RE.fullmatch("/" + path):
            return self._override(method, path, m[1], body)
        if method == "PUT":
            if re.fullmatch(r"(logs/)?[0-9a-f]{12}-(boot|app)\.log", path):
                self.uploads[path] = body or b""
                return 201, b""
            return 403, b""
        if path == "000000000000.cfg" or path.endswith("/000000000000.cfg"):
            index = json.loads((self.root / "ua-index.json").read_text())
            token = dispatch(headers.get("User-Agent"), index["models"])
            path = index["models"].get(token, index["default"])
        m = re.fullmatch(r"contacts/[0-9a-f]{12}-directory\.xml", path)
        if m and not (self.root / path).is_file():
            path = "contacts/000000000000-directory.xml"
        f = self.root / path
        if ".." in path.split("/") or not f.is_file():
            return 404, b""
        return 200, (b"" if method == "HEAD" else f.read_bytes())

    def _override(self, method: str, path: str, mac: str, body: bytes | None) -> tuple[int, bytes]:
        known = (self.root / f"{mac}-phone.cfg").is_file()
        if method == "PUT":
            if not known:
                return 404, b""  # a phone the build does not know
            try:
                overrides.parse(body or b"")
            except overrides.OverrideError as exc:
                return 400, str(exc).encode()
            existed = path in self.uploads
            self.uploads[path] = body or b""
            return (204 if existed else 201), b""
        stored = self.uploads.get(path)
        if stored is None and (self.root / path).is_file():
            stored, known = (self.root / path).read_bytes(), True  # a tree with override files of its own
        served = overrides.answer(overrides.read_policy(self.root.resolve()), stored) if known else None
        if served is None:
            return 404, b""
        return 200, (b"" if method == "HEAD" else served)


# ------------------------------------------------------------------ the boot
def _join(directory: str, name: str) -> str:
    directory = (directory or "").strip()
    if not directory or directory in (".", "./"):
        return name
    return directory.rstrip("/") + "/" + name


def _attrs(xml: bytes) -> list[tuple[str, str]]:
    """Every attribute of every element, in document order (parameter files are flat in meaning)."""
    root = ET.fromstring(xml)
    return [(k, v) for el in root.iter() for k, v in el.attrib.items() if not k.startswith("{")]


def firmware_requests(app_file_path: str, part_number: str | None) -> list[str]:
    """The names a phone asks for to get APP_FILE_PATH, in order: ``<part>.<name>`` in the same
    directory first, then the name as written (docs/polycom.md §6)."""
    if not part_number or "[" in app_file_path:  # a macro such as [PHONE_PART_NUMBER] says it all
        return [app_file_path]
    head, _, name = app_file_path.rpartition("/")
    return [f"{head}/{part_number}.{name}" if head else f"{part_number}.{name}", app_file_path]


def _part_number(user_agent: str) -> str | None:
    """The split-image part number of the model this User-Agent names, from the built-in catalog."""
    from polygen.catalog import Catalog
    from polygen.useragent import parse_user_agent

    ua = parse_user_agent(user_agent)
    model = Catalog().find(ua.model) if ua else None
    return model.part_number if model else None


@dataclass
class _Boot:
    """What the steps of one boot share: the phone, its server and what it has read so far."""

    transport: Transport
    mac: str
    user_agent: str
    part_number: str | None
    firmware_required: bool
    report: BootReport
    master: dict[str, str] = field(default_factory=dict)
    cfg_files: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, note: str = "") -> tuple[int, bytes]:
        status, body = self.transport.request("GET", path, {"User-Agent": self.user_agent})
        self.report.requests.append(Request("GET", "/" + path.lstrip("/"), status, len(body), note))
        return status, body

    def fail(self, message: str) -> None:
        self.report.failures.append(message)

    def absorb(self, name: str, body: bytes, override: bool) -> list[tuple[str, str]]:
        """Take the parameters of file ``name``: all of them (an override file), or those no
        earlier file set (CONFIG_FILES, where the first value wins). Returns what the file sets."""
        try:
            pairs = _attrs(body)
        except ET.ParseError as exc:
            self.fail(f"{name} is not well-formed XML: {exc}")
            return []
        for k, v in pairs:
            if override or k not in self.params:
                self.params[k] = v
                self.sources[k] = name
        return pairs


def boot(transport: Transport, mac: str, user_agent: str, *, firmware_required: bool = True,
         max_redirects: int = 3, part_number: str | None = None) -> BootReport:
    """``part_number``: the phone's own, for its split image; by default the catalog's for the
    User-Agent's model ("" for none)."""
    mac = mac.lower().replace(":", "").replace("-", "")
    if part_number is None:
        part_number = _part_number(user_agent)
    b = _Boot(transport, mac, user_agent, part_number, firmware_required, BootReport(mac, user_agent))
    if not _read_master(b):
        return b.report
    _fetch_firmware(b)
    _read_config_files(b)
    _read_overrides(b)
    b.report.params, b.report.sources = b.params, b.sources
    redirected = _follow_redirect(b, max_redirects)
    if redirected is not None:
        return redirected
    _read_directories(b)
    _upload_boot_log(b)
    _registrations(b)
    _hints(b)
    return b.report


def _read_master(b: _Boot) -> bool:
    """The per-phone master, then the default one (docs/polycom.md §1 lookup order), with the
    phone's per-model element applied. False: there is none the phone can use."""
    status, master = b.get(f"{b.mac}.cfg", note="per-phone master (optional)")
    if status != 200:
        status, master = b.get("000000000000.cfg", note="master, chosen by User-Agent")
    if status != 200:
        b.fail(f"no master configuration: 000000000000.cfg answered {status}")
        return False
    try:
        root = ET.fromstring(master)
    except ET.ParseError as exc:
        b.fail(f"master configuration is not XML: {exc}")
        return False
    if root.tag != "APPLICATION":
        b.fail(f"master configuration root is <{root.tag}>, not <APPLICATION>")
        return False
    m = dict(root.attrib)
    from polygen.useragent import parse_user_agent

    ua = parse_user_agent(b.user_agent)
    token = ua.token if ua else None
    if token is not None:
        el = root.find(f"APPLICATION_{token}")
        if el is not None:
            for k, v in el.attrib.items():
                base = k[: -len(token) - 1] if k.endswith("_" + token) else k
                if v:
                    m[base] = v
    b.master = b.report.master = m
    return True


def _fetch_firmware(b: _Boot) -> None:
    """Its split image <part>.sip.ld first, then the combined one (docs/polycom.md §6)."""
    app = b.master.get("APP_FILE_PATH", "")
    if not app:
        return
    for name in firmware_requests(app, b.part_number):
        note = "firmware" if name == app else "firmware (split image, asked first)"
        status, _ = b.get(name, note=note)
        if status == 200:
            b.report.firmware = name
            return
    msg = f"firmware {app} answered {status}: the phone keeps the firmware it runs"
    (b.report.failures if b.firmware_required else b.report.warnings).append(msg)


def _read_config_files(b: _Boot) -> None:
    """CONFIG_FILES in order, the first occurrence of a parameter wins."""
    b.cfg_files = [c.strip().replace("[PHONE_MAC_ADDRESS]", b.mac)
                   for c in b.master.get("CONFIG_FILES", "").split(",") if c.strip()]
    if not b.cfg_files:
        b.fail("the master configuration lists no CONFIG_FILES")
    for name in b.cfg_files:
        status, body = b.get(name, note="CONFIG_FILES")
        if status != 200:
            b.fail(f"{name} (CONFIG_FILES) answered {status}")
            continue
        b.absorb(name, body, override=False)


def _read_overrides(b: _Boot) -> None:
    """Override files from OVERRIDES_DIRECTORY beat CONFIG_FILES; <mac>-web.cfg beats
    <mac>-phone.cfg (docs/polycom.md §1)."""
    od = b.master.get("OVERRIDES_DIRECTORY", "")
    for kind in overrides.KINDS:
        name = _join(od, f"{b.mac}-{kind}.cfg")
        status, body = b.get(name, note="override file")
        if status == 200 and body.strip():
            b.report.overrides[kind] = dict(b.absorb(name, body, override=True))
        elif status != 404:  # none stored is a 404; anything else, the phone goes without it
            b.report.warnings.append(f"override file {name} answered {status}: the phone boots without "
                                     "its local changes")


def _follow_redirect(b: _Boot, max_redirects: int) -> BootReport | None:
    """device.prov.* naming another provisioning server: the phone reboots against it, so the
    whole boot is played again there. None: no redirect, the boot goes on here."""
    params, transport, report = b.params, b.transport, b.report
    if not (params.get("device.set") == "1" and params.get("device.prov.serverName.set", "1") == "1"):
        return None
    target = params.get("device.prov.serverName")
    redirect = getattr(transport, "redirect", None)
    if not target or redirect is None or transport.same_server(target):
        return None
    report.redirects.append(target)
    if max_redirects <= 0:
        b.fail(f"too many device.prov.serverName redirects (last: {target})")
        return report
    nxt = boot(redirect(target), b.mac, b.user_agent, firmware_required=b.firmware_required,
               max_redirects=max_redirects - 1, part_number=b.part_number)
    nxt.requests = report.requests + nxt.requests
    nxt.redirects = report.redirects + nxt.redirects
    return nxt


def _read_directories(b: _Boot) -> None:
    """Both directory files; the phone's own, when there is one, is the one it uses."""
    cd = b.master.get("CONTACTS_DIRECTORY", "")
    in_use = False
    for name in (f"{b.mac}-directory.xml", "000000000000-directory.xml"):
        path = _join(cd, name)
        status, body = b.get(path, note="directory")
        if status != 200:
            b.fail(f"{path} answered {status}")
            continue
        try:
            d = ET.fromstring(body)
        except ET.ParseError as exc:
            b.fail(f"{path} is not well-formed XML: {exc}")
            continue
        if not in_use:
            in_use = True
            b.report.directory = [{c.tag: c.text or "" for c in item} for item in d.findall("./item_list/item")]
            b.report.directory_entries = len(b.report.directory)


def _upload_boot_log(b: _Boot) -> None:
    """The boot log, as the Updater uploads it."""
    ua = b.user_agent
    updater_ua = re.sub(r"Type/\w+", "Type/Updater", ua) if "Type/" in ua else ua
    path = _join(b.master.get("LOG_FILE_DIRECTORY", ""), f"{b.mac}-boot.log")
    stamp = time.strftime("%m%d%H%M%S", time.gmtime())
    # event class 2: information, not an error (`polygen status` looks for class 4 and above)
    log = (f"{stamp}|cfg  |2|00|polygen simulate: boot of {b.mac}\n"
           f"{stamp}|cfg  |2|00|config files: {', '.join(b.cfg_files)}\n").encode()
    status, _ = b.transport.request("PUT", path, {"User-Agent": updater_ua}, log)
    b.report.requests.append(Request("PUT", "/" + path, status, len(log), "boot log"))
    if status not in (200, 201, 204):
        b.fail(f"boot log upload answered {status}")


def _registrations(b: _Boot) -> None:
    """The effective registrations: reg.1, reg.2 ... up to the first without an address."""
    params, report = b.params, b.report
    i = 1
    while f"reg.{i}.address" in params and params[f"reg.{i}.address"]:
        p = f"reg.{i}."
        report.lines.append(Line(i, params[p + "address"], params.get(p + "auth.userId", ""),
                                 params.get(p + "auth.password", ""), params.get(p + "displayName", ""),
                                 params.get(p + "label", ""),
                                 params.get(p + "server.1.address") or params.get("voIpProt.server.1.address", "")))
        i += 1
    if not report.lines:
        report.warnings.append("no registration: the phone will boot without a line")


def _hints(b: _Boot) -> None:
    if any(q.status == 401 for q in b.report.requests):
        if getattr(b.transport, "auth", None):
            b.report.hints.append("401: the server refused the user and password given in --url; check them "
                                  "against site.provisioning_auth")
        else:
            b.report.hints.append("401: the server wants provisioning credentials; give them in the URL, "
                                  "e.g. --url http://user:password@host/")


def local_change(transport: Transport, report: BootReport, changes: dict[str, str], *,
                 kind: str = "phone") -> Request:
    """A user changes ``changes`` on the phone after the boot of ``report`` (``kind`` "phone": on
    its menus; "web": in its web interface): the phone PUTs its whole override file of that kind
    (what it got at boot, with the changes) into OVERRIDES_DIRECTORY. The request is added to the
    report, and a refusal to its failures."""
    name = _join(report.master.get("OVERRIDES_DIRECTORY", ""), f"{report.mac}-{kind}.cfg")
    body = overrides.render({**report.overrides.get(kind, {}), **changes})
    status, _ = transport.request("PUT", name, {"User-Agent": report.user_agent}, body)
    request = Request("PUT", "/" + name, status, len(body), f"override file: {', '.join(changes)}")
    report.requests.append(request)
    if not request.ok():
        report.failures.append(f"override upload {name} answered {status}: the change is lost at the next boot")
    return request


def format_report(r: BootReport) -> str:
    out = [f"Simulating {r.mac} ({r.user_agent})"]
    for q in r.requests:
        out.append(f"  {q.method:<4} {q.path:<48} {q.status}  {q.note}".rstrip())
    for ln in r.lines:
        out.append(f"  line {ln.index}: {ln.address} \"{ln.display_name}\" label {ln.label} "
                   f"auth {ln.user_id}/{MASK if ln.password else '(none)'} via {ln.server}")
    out.append(f"  directory: {r.directory_entries} entries")
    out += [f"  warning: {w}" for w in r.warnings]
    out += [f"  FAILED: {f}" for f in r.failures]
    out += [f"  hint: {h}" for h in r.hints]
    out.append("  result: OK" if r.ok else "  result: FAILED")
    # What the server sent (names, paths, parse errors) is shown, never obeyed; passwords masked.
    secrets = {ln.password for ln in r.lines if ln.password}
    return "\n".join(visible(mask(line, secrets), newlines=True) for line in out)
