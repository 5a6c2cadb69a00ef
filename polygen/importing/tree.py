"""``read_tree(directory) -> Tree``: what each phone of an existing provisioning directory gets.

The phones are the MACs of per-phone masters (``<mac>.cfg``) and those whose files the default
master's CONFIG_FILES name through ``[PHONE_MAC_ADDRESS]`` (``<mac>-phone.cfg``,
``phone[PHONE_MAC_ADDRESS].cfg``, …), plus any given with ``models``. Each phone's boot is played
over the directory with ``polygen.simulate.boot`` — the same code that checks a build: master
(per-phone first), the per-model element of its model, CONFIG_FILES in order (first value wins),
the override files — so its parameters are what the phone ends up with, whatever the dialect
(SIP 3.x ``<sip>``/``<phone1>`` or UC ``<polycomConfig>``; element names carry no meaning).

The model of a phone comes from ``models`` (``--model MAC=M``), else the single per-model element
of its own master, else a part number in its own master's firmware path, else ``default_model``;
otherwise it is reported, not guessed. Every file no phone read is listed with the reason.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from polygen.catalog import Catalog, Model
from polygen.inventory import Problem, normalise_mac
from polygen.simulate import boot

_MAC_FILE_RE = re.compile(r"^([0-9A-Fa-f]{12})\.cfg$")
_MACRO = "[PHONE_MAC_ADDRESS]"
DEFAULT_MASTER = "000000000000.cfg"


@dataclass
class PhoneConfig:
    mac: str
    model: Model
    model_from: str  # how the model was told, for the report
    params: dict[str, str]
    sources: dict[str, str]  # parameter -> the file its value came from
    master: dict[str, str]  # the master's attributes after the per-model element
    master_file: str


@dataclass
class DirectoryItem:
    fields: dict[str, str]  # fn, ln, ct, lb, sd, … as written
    file: str


@dataclass
class Tree:
    root: Path
    phones: list[PhoneConfig] = field(default_factory=list)
    directory: list[DirectoryItem] = field(default_factory=list)
    unused: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    problems: list[Problem] = field(default_factory=list)  # errors and warnings, by file
    # a phone's own <mac>-directory.xml: its file and items (infer: speed dials, else company entries)
    own_directories: dict[str, tuple[str, list[DirectoryItem]]] = field(default_factory=dict)


class DirTransport:
    """A provisioning directory answered as a plain file server: names as the phone asks for them
    (a MAC in either case), nothing outside the directory, uploads accepted and dropped."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.served: set[str] = set()
        self._lower: dict[str, list[str]] | None = None
        self._bytes: dict[str, bytes] = {}  # the shared files are read by every phone

    def _find(self, path: str) -> str | None:
        if "://" in path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            return None
        if (self.root / path).is_file():
            return path
        if self._lower is None:
            self._lower = {}
            for rel in files_of(self.root):
                self._lower.setdefault(rel.lower(), []).append(rel)
        found = self._lower.get(path.lower())
        return found[0] if found else None

    def request(self, method, path, headers, body=None):
        if method == "PUT":
            return 201, b""
        rel = self._find(path.lstrip("/"))
        if rel is None:
            return 404, b""
        self.served.add(rel)
        if rel not in self._bytes:
            self._bytes[rel] = (self.root / rel).read_bytes()
        return 200, self._bytes[rel]


def files_of(root: Path) -> list[str]:
    """Every regular file under ``root`` (relative, POSIX), symlinked files included."""
    out = []
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for n in sorted(files):
            p = Path(dirpath) / n
            if p.is_file():
                out.append(p.relative_to(root).as_posix())
    return out


def _xml_root(path: Path) -> ET.Element | None:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None


def _pattern(entry: str) -> re.Pattern | None:
    """A CONFIG_FILES entry naming a phone's own file -> a regex capturing the MAC."""
    if _MACRO not in entry:
        return None
    parts = [re.escape(p) for p in entry.split(_MACRO)]
    return re.compile("^" + "([0-9A-Fa-f]{12})".join(parts) + "$", re.IGNORECASE)


def _config_entries(master: ET.Element) -> list[str]:
    values = [master.get("CONFIG_FILES", "")]
    for el in master:
        values += [v for k, v in el.attrib.items() if k.startswith("CONFIG_FILES")]
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def user_agent(model: Model) -> str:
    return f"FileTransport {model.family}-{model.ua_token}-UA/{model.firmware}.0000 Type/Application"


def _model_from_master(root: ET.Element | None, catalog: Catalog) -> tuple[Model | None, str]:
    if root is None or root.tag != "APPLICATION":
        return None, ""
    tokens = [el.tag[len("APPLICATION_"):] for el in root if el.tag.startswith("APPLICATION_")]
    found = {m.key: m for m in (catalog.find(t) for t in tokens) if m is not None}
    if len(found) == 1:
        (m,) = found.values()
        return m, f"its master's element APPLICATION_{m.token}"
    app = root.get("APP_FILE_PATH", "")
    by_part = [m for m in catalog.models.values() if m.part_number and m.part_number in app]
    if len(by_part) == 1:
        return by_part[0], f"the part number in its firmware path {app}"
    return None, ""


def _unused_reason(rel: str, root: Path) -> str:
    name = rel.rsplit("/", 1)[-1]
    low = name.lower()
    if low.endswith((".ld", ".sig", ".bin", ".ver", ".zip")):
        return "firmware: polygen links firmware from its --firmware directory"
    if low.endswith(".log"):
        return "a log a phone uploaded, not configuration"
    if low.endswith("-calls.xml"):
        return "a call list a phone uploaded"
    if low.endswith("-license.cfg"):
        return "a licence file; polygen does not provision licences"
    if name == ".htpasswd":
        return "the web server's users (provisioning credentials come from device.prov.*)"
    if name in ("ua-index.json", ".polygen-manifest.json", ".polygen-serve.json"):
        return "polygen's own index; a build writes it again"
    if name == ".polygen-build.json":
        return "polygen's own record of the build; a build writes it again"
    if low.endswith(".xml") and "directory" in low:
        return "a directory no phone fetches"
    if low.endswith(".cfg"):
        r = _xml_root(root / rel)
        if r is not None and r.tag == "APPLICATION":
            return "a master configuration no phone reads (phones read <mac>.cfg, else 000000000000.cfg)"
        if r is None:
            return "not XML; no phone could read it"
        return "a configuration file no phone's CONFIG_FILES lists"
    return "not a file phones fetch"


def _directory_items(path: Path, rel: str, problems: list[Problem]) -> list[DirectoryItem]:
    r = _xml_root(path)
    if r is None:
        problems.append(Problem(rel, None, "", "not a directory file (not XML); its entries are not imported",
                                "warning"))
        return []
    return [DirectoryItem({c.tag: (c.text or "").strip() for c in item}, rel) for item in r.iter("item")]


def read_tree(root: Path, *, models: dict[str, str] | None = None, default_model: str | None = None,
              catalog: Catalog | None = None, progress=None) -> Tree:
    """Play every phone's boot over ``root``; ``models``: MAC (any spelling) -> model name;
    ``progress(done, total)`` after each phone."""
    root = Path(root)
    catalog = catalog or Catalog()
    tree = Tree(root)
    all_files = files_of(root)
    transport = DirTransport(root)

    def problem(file, message, severity="error"):
        tree.problems.append(Problem(file, None, "", message, severity))

    given: dict[str, Model] = {}
    for spelled, name in (models or {}).items():
        mac = normalise_mac(spelled)
        m = catalog.find(name)
        if mac is None:
            problem("--model", f"'{spelled}' is not a MAC address")
        elif m is None:
            s = catalog.suggest(name)
            problem("--model", f"unknown model '{name}' for {mac}" + (f" (did you mean {s}?)" if s else ""))
        else:
            given[mac] = m
    fallback = None
    if default_model is not None:
        fallback = catalog.find(default_model)
        if fallback is None:
            s = catalog.suggest(default_model)
            problem("--default-model", f"unknown model '{default_model}'" + (f" (did you mean {s}?)" if s else ""))

    # which phones: their own masters, and files the default master names through the MAC macro
    macs: dict[str, str] = {}  # mac -> the file that shows it
    for rel in all_files:
        m = _MAC_FILE_RE.match(rel)
        if m and m.group(1) != "000000000000":
            macs.setdefault(m.group(1).lower(), rel)
    default_root = _xml_root(root / DEFAULT_MASTER) if (root / DEFAULT_MASTER).is_file() else None
    if default_root is not None and default_root.tag == "APPLICATION":
        patterns = [p for p in map(_pattern, _config_entries(default_root)) if p is not None]
        for rel in all_files:
            for p in patterns:
                m = p.match(rel)
                if m and m.group(1) != "000000000000":
                    macs.setdefault(m.group(1).lower(), rel)
    elif (root / DEFAULT_MASTER).is_file():
        problem(DEFAULT_MASTER, "not a master configuration (an <APPLICATION> XML file); phones without a "
                                "master of their own cannot boot from it")
    for mac in given:
        macs.setdefault(mac, "--model")
    if not macs:
        problem(str(root), "no phones found: no <mac>.cfg masters, and no files named by the CONFIG_FILES of "
                           "000000000000.cfg through [PHONE_MAC_ADDRESS]; name the phones with --model MAC=MODEL")

    for done, mac in enumerate(sorted(macs), 1):
        if progress is not None:
            progress(done, len(macs))
        own_rel = next((r for r in all_files if r.lower() == f"{mac}.cfg"), None)
        own_root = _xml_root(root / own_rel) if own_rel else None
        model, how = given.get(mac), "--model"
        if model is None:
            model, how = _model_from_master(own_root, catalog)
        if model is None and fallback is not None:
            model, how = fallback, "--default-model"
        if model is None:
            problem(own_rel or macs[mac], f"phone {mac}: cannot tell its model; give it with --model {mac}=MODEL "
                                          "(e.g. VVX410) or --default-model MODEL")
            continue
        report = boot(transport, mac, user_agent(model), firmware_required=False)
        master_file = own_rel if own_rel and own_root is not None and own_root.tag == "APPLICATION" \
            else DEFAULT_MASTER
        for f in report.failures:
            if "not well-formed XML" in f or "master configuration" in f:
                problem(master_file, f"phone {mac}: {f}")
            elif "CONFIG_FILES" in f:
                problem(master_file, f"phone {mac}: {f}: the phone ran without it", "warning")
        tree.phones.append(PhoneConfig(mac, model, how, report.params, report.sources, report.master, master_file))

    # the company directory, and any per-phone directory
    seen_dirs: set[str] = set()
    for pc in tree.phones:
        cd = pc.master.get("CONTACTS_DIRECTORY", "").strip().strip("/")
        for name in ("000000000000-directory.xml", f"{pc.mac}-directory.xml"):
            rel = transport._find(f"{cd}/{name}" if cd and cd != "." else name)
            if rel is None or rel in seen_dirs:
                continue
            seen_dirs.add(rel)
            items = _directory_items(root / rel, rel, tree.problems)
            if name != "000000000000-directory.xml" and items:
                tree.own_directories[pc.mac] = (rel, items)
            else:
                tree.directory += items
    used = transport.served | seen_dirs
    tree.unused = [(rel, _unused_reason(rel, root)) for rel in all_files if rel not in used]
    return tree
