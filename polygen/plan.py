"""``plan(inventory, renderer, releases) -> Plan``: every file of out/, as cheap descriptions.

Nothing is rendered here, and nothing is read: the firmware releases come as a listing
(``polygen.firmware.read_releases``, read by the build). Each ``OutputFile`` carries a *key*: a digest of everything its bytes
depend on (the phone, its extensions and model, the site, the templates, polygen's version).
The writer compares keys with the previous build's manifest, so a rebuild renders only what
changed, and a no-op rebuild renders nothing. See DESIGN.md for the layout.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import operator
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from polygen import __version__, htpasswd, overrides
from polygen.catalog import Model
from polygen.dialcheck import site_params as dialplan_params
from polygen.directory import directory_entries, phone_directory
from polygen.errors import BuildError
from polygen.firmware import ReleaseFile, Releases, fetched
from polygen.inventory import Extension, Inventory, Phone, mwi_address
from polygen.linekeys import key_params
from polygen.render import Renderer

LOG_DIR = "logs"
CONTACTS_DIR = "contacts"
CALLS_DIR = "calls"
DIRECTORY_FILE = f"{CONTACTS_DIR}/000000000000-directory.xml"
DEFAULT_BOOTSTRAP = "000000000000.cfg"
UA_INDEX = "ua-index.json"
SITE_FILE = {"uc": "site.cfg", "sip3": "site-sip3.cfg"}
SECRET_MODE = 0o640
PUBLIC_MODE = 0o644
_FW_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


@dataclass(frozen=True, slots=True)
class OutputFile:
    path: str  # relative, POSIX
    key: str  # digest of the inputs
    mode: int
    origin: str  # what it comes from, for messages
    render: Callable[[], Iterable[str]] | None = None  # produces the text
    link: Path | None = None  # or: a file to link (firmware)
    secret: bool = False


@dataclass
class Plan:
    files: Callable[[], Iterator[OutputFile]]  # a fresh iterator each call; nothing kept in memory
    count: int
    phones: int
    warnings: list[str] = field(default_factory=list)
    # the phone index the manifest keeps (write(index=...)): what the sidecar and `polygen status`
    # know of each phone of the generation without the inventory or its secrets
    index: Callable[[], dict] | None = None


def phone_index(inv: Inventory) -> dict:
    """``{"site": {"name"}, "phones": {mac: {"model", "ua_token", "release", "lines"}}}``: each
    phone's catalog model, the User-Agent token it should report, the firmware release it is
    given, and the extensions on its lines."""
    models = inv.catalog.models
    return {
        "site": {"name": inv.site.name},
        "phones": {p.mac: {"model": p.model, "ua_token": models[p.model].ua_token,
                           "release": models[p.model].firmware, "lines": list(p.lines)} for p in inv.phones},
    }


def _digest(*parts) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(repr(_plain(p)).encode())
        h.update(b"\x00")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _fields_of(cls) -> Callable[[object], tuple] | None:
    """A fast getter of every field of a dataclass, as a tuple (None for other types)."""
    if not dataclasses.is_dataclass(cls):
        return None
    names = [f.name for f in dataclasses.fields(cls)]
    if len(names) == 1:
        return lambda obj, name=names[0]: (getattr(obj, name),)
    return operator.attrgetter(*names) if names else (lambda obj: ())


def _plain(obj):
    """``obj`` as builtins, for a key: every field of a dataclass, including those ``repr`` hides
    (``field(repr=False)`` secrets: a changed password must change the key)."""
    if isinstance(obj, str):
        return obj
    get = _fields_of(type(obj))
    if get is not None:
        return (type(obj).__name__,) + tuple(_plain(v) for v in get(obj))
    if isinstance(obj, (list, tuple)):
        return tuple(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return tuple((k, _plain(v)) for k, v in obj.items())
    return obj


def phone_file(mac: str) -> str:
    return f"{mac}-phone.cfg"


def phone_directory_file(mac: str) -> str:
    """A phone's own directory: written only for a phone with speed dials (polygen.linekeys)."""
    return f"{CONTACTS_DIR}/{mac}-directory.xml"


def firmware_path(model: Model) -> str:
    return f"firmware/{model.firmware}/sip.ld"


def config_files(model: Model, releases: Releases) -> str:
    files = ["[PHONE_MAC_ADDRESS]-phone.cfg", SITE_FILE[model.dialect]]
    if model.dialect == "sip3":
        # SIP 3.x has no built-in defaults: Polycom's sip.cfg/phone1.cfg of the release come last
        present = {f.name for f in releases.get(model.firmware, ()) if f.identity is not None}
        files += [f"firmware/{model.firmware}/{n}" for n in ("phone1.cfg", "sip.cfg") if n in present]
    return ", ".join(files)


def phone_sections(inv: Inventory, phone: Phone) -> list[tuple[str, list[tuple[str, str]]]]:
    """The parameters of one phone, grouped; the phone's own settings replace computed values."""
    site = inv.site
    own = dict(phone.settings)
    reg = []
    mwi = []
    for i, ext in enumerate(phone.lines, 1):
        e = inv.extensions[ext]
        p = f"reg.{i}."
        reg += [
            (p + "address", e.ext),
            (p + "auth.userId", e.ext),
            (p + "auth.password", e.secret),
            (p + "displayName", e.display_name),
            (p + "label", e.label),
            (p + "type", "shared" if e.shared else "private"),
            (p + "server.1.address", site.sip_server),
        ]
        if site.sip_port:
            reg.append((p + "server.1.port", str(site.sip_port)))
        if site.voicemail:
            # the Messages key calls the voicemail number, not the line itself (the default)
            m = f"msg.mwi.{i}."
            mwi += [(m + "subscribe", mwi_address(site, e.mailbox)), (m + "callBackMode", "contact"),
                    (m + "callBack", site.voicemail)]
    time = _time_params(inv.time_rules(phone.timezone or site.timezone))
    keys = key_params(inv, phone, inv.model(phone)) if phone.keys else []
    device = []
    if site.admin_password and inv.catalog.models[phone.model].dialect == "uc":
        # in the phone's own file (0640), never the site file everyone may read; kept in flash
        device = [("device.set", "1"), ("device.auth.localAdminPassword.set", "1"),
                  ("device.auth.localAdminPassword", site.admin_password)]
    prov = legacy_polling(inv, phone)
    sections = [("reg", reg), ("msg", mwi), ("tcpIpApp", time), ("prov", prov), ("keys", keys), ("device", device)]
    if not own:  # the common case, 100k times a build: no filtering needed
        return [(n, ps) for n, ps in sections if ps]
    out = [(name, [(k, v) for k, v in params if k not in own]) for name, params in sections]
    out.append(("settings", list(phone.settings)))
    return [(n, ps) for n, ps in out if ps]


def legacy_polling(inv: Inventory, phone: Phone) -> list[tuple[str, str]]:
    """A SIP 3.2-or-older phone's own ``prov.polling.time`` when the site polls at random.

    Those releases have no ``timeRandomEnd`` (docs/polycom.md §3.4): their site file says ``abs``
    and each phone polls daily at a fixed minute of the window, taken from its MAC, so they spread
    like the UC phones do and a rebuild never moves them. Nothing when the site settings set
    polling themselves."""
    pol = inv.site.polling
    if pol.mode != "random" or not pol.time_random_end or inv.catalog.models[phone.model].dialect != "sip3":
        return []
    if any(k.startswith("prov.polling.") for k, _ in inv.site.settings):
        return []
    start, end = _minutes(pol.time), _minutes(pol.time_random_end)
    window = (end - start) % 1440 or 1440
    at = (start + zlib.crc32(phone.mac.encode()) % window) % 1440
    return [("prov.polling.time", f"{at // 60:02d}:{at % 60:02d}")]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@functools.lru_cache(maxsize=64)
def _time_params(rules) -> list[tuple[str, str]]:
    # the same few zones for every phone: build their parameter list once (never mutated)
    return list(rules.params().items())


def site_sections(inv: Inventory, dialect: str) -> list[tuple[str, list[tuple[str, str]]]]:
    site = inv.site
    own = dict(site.settings)
    server = [("voIpProt.server.1.address", site.sip_server)]
    if site.sip_port:
        server.append(("voIpProt.server.1.port", str(site.sip_port)))
    pol = site.polling
    # SIP 3.2 and older have no timeRandomEnd (docs/polycom.md §3.4): their site file polls at a
    # fixed time and each phone file picks its minute of the window (legacy_polling)
    mode = "abs" if pol.mode == "random" and dialect == "sip3" else pol.mode
    prov = [("prov.polling.enabled", "1"), ("prov.polling.mode", mode),
            ("prov.polling.period", str(pol.period)), ("prov.polling.time", pol.time)]
    if pol.time_random_end and dialect == "uc":  # timeRandomEnd exists in UC only (docs/polycom.md §3)
        prov.append(("prov.polling.timeRandomEnd", pol.time_random_end))
    ntp = [("tcpIpApp.sntp.address", site.ntp_server), ("tcpIpApp.sntp.address.overrideDHCP", "1")] \
        if site.ntp_server else []
    # the directory is served from the inventory: a phone's own edits would be lost at its next
    # boot, so the phone does not offer them (docs/polycom.md §4, §10)
    directory = [("dir.local.readonly", "1")]
    # logs are uploaded daily in append mode to LOG_FILE_DIRECTORY, where the sidecar takes them
    log = [("log.render.file", "1"), ("log.render.file.upload.period", "86400"),
           ("log.render.file.upload.append", "1")]
    sections = [("voIpProt", server), ("prov", prov), ("tcpIpApp", ntp), ("log", log), ("dir", directory),
                ("dialplan", dialplan_params(site))]
    if site.auth:
        # the phones keep these credentials in flash; the servers also accept site.auth.previous
        # until every phone has polled, so a rotation strands no phone (README, "Provisioning auth")
        sections.append(("device", [("device.set", "1"),
                                    ("device.prov.user.set", "1"), ("device.prov.user", site.auth.user),
                                    ("device.prov.password.set", "1"), ("device.prov.password", site.auth.password)]))
    out = [(name, [(k, v) for k, v in params if k not in own]) for name, params in sections]
    if own:
        out.append(("settings", list(site.settings)))
    return [(n, ps) for n, ps in out if ps]


def _bootstrap_context(label: str, base: dict, models: list[dict]) -> dict:
    # the phones' override uploads have a directory of their own, apart from the generated
    # <mac>-phone.cfg of CONFIG_FILES (DESIGN.md, "Decisions")
    dirs = {"log": LOG_DIR, "contacts": CONTACTS_DIR, "overrides": overrides.DIRECTORY, "calls": CALLS_DIR}
    return {"label": label, "base": base, "models": models, "dirs": dirs}


def _firmware_files(releases: Releases, release: str, dialect: str) -> list[ReleaseFile]:
    keep = []
    for f in releases.get(release, ()):
        if not _FW_NAME_RE.fullmatch(f.name) or not fetched(f.name, dialect):
            continue
        if f.identity is None:
            # inventory.load refuses it already (polygen.firmware); a release it did not check
            # must not be linked without it either
            raise BuildError(f.broken)
        keep.append(f)
    return keep


def plan(inv: Inventory, renderer: Renderer, releases: Releases, group: str | None = None) -> Plan:
    """``releases``: the firmware releases the models run, as read by ``polygen.firmware.read_releases``."""
    models = inv.models_in_use()
    dialects = sorted({m.dialect for m in models} | {"uc"})
    version = __version__
    tdig = renderer.digest
    warnings: list[str] = []

    model_ctx = []
    for m in models:
        model_ctx.append({"token": m.token, "ua_token": m.ua_token, "app_file_path": firmware_path(m),
                          "config_files": config_files(m, releases)})
    # what each model finds in its release was checked by inventory.load (polygen.firmware)
    fw_files: list[tuple[Model, ReleaseFile]] = []
    seen_releases = set()
    for m in models:
        if m.firmware not in seen_releases:
            seen_releases.add(m.firmware)
            fw_files += [(m, p) for p in _firmware_files(releases, m.firmware, m.dialect)]

    listed = directory_entries(inv)
    # more contacts than a model keeps: a warning of inventory.load (per model, with its place)
    site_key = _digest(inv.site, group)  # the group of secret files is part of what they are

    def files() -> Iterator[OutputFile]:
        # shared files first
        default_base = {"app_file_path": "sip.ld", "config_files": f"[PHONE_MAC_ADDRESS]-phone.cfg, {SITE_FILE['uc']}"}
        yield OutputFile(DEFAULT_BOOTSTRAP, _digest(version, tdig, default_base, model_ctx), PUBLIC_MODE,
                         "default bootstrap",
                         lambda: [renderer.render("bootstrap.cfg.j2",
                                                  **_bootstrap_context("default", default_base, model_ctx))])
        for mc in model_ctx:
            base = {"app_file_path": mc["app_file_path"], "config_files": mc["config_files"]}
            yield OutputFile(f"bootstrap/{mc['token']}.cfg", _digest(version, tdig, mc), PUBLIC_MODE,
                             f"bootstrap for {mc['token']}",
                             lambda mc=mc, base=base: [renderer.render(
                                 "bootstrap.cfg.j2", **_bootstrap_context(mc["token"], base, [mc]))])
        index = {"version": 1, "default": DEFAULT_BOOTSTRAP,
                 "models": {mc["ua_token"]: f"bootstrap/{mc['token']}.cfg" for mc in model_ctx}}
        index_text = json.dumps(index, indent=2, sort_keys=True) + "\n"
        yield OutputFile(UA_INDEX, _digest(version, index_text), PUBLIC_MODE, "User-Agent index",
                         lambda: [index_text])
        serve_text = overrides.policy_text(inv.site.overrides)  # read by the sidecar, never served
        yield OutputFile(overrides.SERVE_FILE, _digest(version, serve_text), PUBLIC_MODE, "what the servers do",
                         lambda: [serve_text])
        site_mode = SECRET_MODE if inv.site.auth else PUBLIC_MODE  # it carries the provisioning password
        for d in dialects:
            yield OutputFile(SITE_FILE[d], _digest(version, tdig, site_key, d), site_mode, f"site ({d})",
                             lambda d=d: [renderer.render("site.cfg.j2", site=inv.site, dialect=d,
                                                          sections=site_sections(inv, d))],
                             secret=bool(inv.site.auth))
        if inv.site.auth:
            auth_text = htpasswd.render(inv.site.auth.accepted(), inv.site.name)
            yield OutputFile(htpasswd.FILENAME, _digest(version, auth_text), SECRET_MODE, "provisioning users",
                             lambda: [auth_text], secret=True)
        dir_key = _digest(version, tdig, listed)
        yield OutputFile(DIRECTORY_FILE, dir_key, PUBLIC_MODE, "company directory",
                         lambda: renderer.stream("directory.xml.j2", entries=listed))
        for phone in inv.phones:
            if any(k.kind == "speed_dial" for k in phone.keys):
                yield OutputFile(phone_directory_file(phone.mac), _digest(dir_key, phone.keys), PUBLIC_MODE,
                                 f"directory of phone {phone.mac}",
                                 lambda phone=phone: renderer.stream(
                                     "directory.xml.j2", entries=phone_directory(inv, listed, phone)))
        for m, src in fw_files:
            yield OutputFile(f"firmware/{m.firmware}/{src.name}", _digest("link", *src.identity), 0o644,
                             f"firmware {m.firmware}", link=src.path)
        # one file per phone. The key is the hot path at 100k phones: the shared inputs are digested
        # once, each zone's rules once, and Phone/Extension fields (plain strings and tuples of
        # them) are read with attrgetter and repr'd in C, instead of the dataclasses' own repr.
        prefix = _digest(version, tdig, site_key, group)
        phone_fields, ext_fields = _fields_of(Phone), _fields_of(Extension)
        zone_keys: dict[str, str] = {}
        model_keys: dict[str, str] = {}  # the template gets the model: all of it is an input
        for phone in inv.phones:
            model = inv.catalog.models[phone.model]
            model_key = model_keys.get(phone.model)
            if model_key is None:
                model_key = model_keys[phone.model] = repr(_plain(model))
            zone = phone.timezone or inv.site.timezone
            zone_key = zone_keys.get(zone)
            if zone_key is None:
                zone_key = zone_keys[zone] = repr(_plain(inv.time_rules(zone)))
            inputs = repr((prefix, phone_fields(phone), [ext_fields(inv.extensions[x]) for x in phone.lines],
                           model_key, zone_key,
                           # a busy lamp field's label is its extension's name
                           [ext_fields(inv.extensions[k.target]) for k in phone.keys if k.kind == "blf"]
                           if phone.keys else None))
            key = hashlib.blake2b(inputs.encode(), digest_size=16).hexdigest()
            yield OutputFile(phone_file(phone.mac), key, SECRET_MODE, f"phone {phone.mac}",
                             lambda phone=phone, model=model: [renderer.render(
                                 "phone.cfg.j2", phone=phone, model=model, dialect=model.dialect,
                                 sections=phone_sections(inv, phone))],
                             secret=True)

    own_directories = sum(1 for p in inv.phones if any(k.kind == "speed_dial" for k in p.keys))
    count = 1 + len(model_ctx) + 2 + len(dialects) + 1 + len(fw_files) + len(inv.phones) + bool(inv.site.auth) \
        + own_directories
    return Plan(files, count, len(inv.phones), warnings, functools.partial(phone_index, inv))
