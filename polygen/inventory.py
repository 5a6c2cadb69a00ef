"""Load and validate the inventory: ``load(directory) -> Inventory``.

Three passes, all collecting problems instead of stopping: parse every YAML file (keeping line
numbers), validate each section field by field into frozen dataclasses, then cross-check
(duplicate MACs and extensions across files, lines naming missing extensions, an extension
on two phones, keys naming missing extensions, line and key counts per model, directory size per
model, secrets). Every problem reads ``file:line: path: message``.
"""

from __future__ import annotations

import difflib
import functools
import gc
import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from polygen.catalog import Catalog, Model, dialect_of
from polygen.errors import InventoryError
from polygen.safetext import visible
from polygen.linekeys import directory_limit, has_flexible_line_keys, has_static_blf
from polygen.tzrules import TimeRules, UnknownZone, rules_for, suggest_zone
from polygen.yamlnodes import Loc, Map, Scalar, Seq, load_file

POLYCOM_OUIS = ("0004f2", "64167f", "482567")
SECRETS_FILENAMES = ("secrets.yaml", "secrets.yml")
SECRET_ENV_PREFIX = "POLYGEN_SECRET_"

# Validators use fullmatch: ``$`` would also match before a trailing newline ("1001\n").
_EXT_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-]{0,63}")
_MAC_SEP_RE = re.compile(r"[:\-. ]")
_HEX12_RE = re.compile(r"[0-9a-f]{12}")
_PARAM_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*")
_RELEASE_RE = re.compile(r"[0-9][0-9A-Za-z._\-]{0,31}")
_PART_RE = re.compile(r"(?=.{1,32}\Z)[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*", re.ASCII)
_HHMM_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)", re.ASCII)
_HOST_RE = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.?")
_UA_TOKEN_RE = re.compile(r"[A-Za-z]+_?[A-Za-z0-9]+", re.ASCII)
# XML 1.0 forbids most control characters even when escaped
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A password is one line of printable text wherever it comes from (inline, the secrets file, the
# environment): no control character at all (C0 with tab and newline, DEL, C1), and no lone
# surrogate, which is how Python hands over bytes of the environment that are not UTF-8.
_SECRET_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def secret_problem(value: str) -> str | None:
    """Why this password cannot be used (without quoting it), or None."""
    if _SURROGATE_RE.search(value):
        return "is not valid UTF-8 text; set it again as UTF-8"
    if m := _SECRET_CONTROL_RE.search(value):
        hint = " (a YAML block scalar, | or >, ends with a newline: quote the password instead)" \
            if m.group() == "\n" else ""
        return f"contains the control character U+{ord(m.group()):04X}; a password is one line of printable text{hint}"
    return None


# ------------------------------------------------------------------ problems
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


# ------------------------------------------------------------------ the model
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


# ------------------------------------------------------------------ helpers
def normalise_mac(text: str) -> str | None:
    """Any common spelling -> 12 lower-case hex digits, or None."""
    t = _MAC_SEP_RE.sub("", text.strip()).lower()
    return t if _HEX12_RE.fullmatch(t) else None


def _suggest(word: str, options) -> str:
    m = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{m[0]}'?)" if m else ""


class _Ctx:
    """Collects problems; converts nodes to typed values."""

    def __init__(self):
        self.problems: list[Problem] = []

    def error(self, loc: Loc | None, path: str, message: str, file: str = "") -> None:
        self.problems.append(Problem(loc.file if loc else file, loc.line if loc else None, path, message))

    def warn(self, loc: Loc | None, path: str, message: str, file: str = "") -> None:
        self.problems.append(Problem(loc.file if loc else file, loc.line if loc else None, path, message, "warning"))

    def keys(self, m: Map, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for k in m:
            if k not in allowed:
                self.error(m.locs[k], f"{path}.{k}" if path else k,
                           f"unknown key '{k}'{_suggest(k, allowed)}; allowed: {', '.join(allowed)}")
        for k in required:
            if k not in m or (isinstance(m[k], Scalar) and m[k].is_null):
                self.error(m.locs.get(k, m.loc), f"{path}.{k}" if path else k, f"missing required field '{k}'")

    def text(self, m: Map, key: str, path: str, default=None, *, what="text") -> str | None:
        """A scalar as written. YAML 1.1 numbers/booleans keep their spelling (0100 stays 0100)."""
        if key not in m:
            return default
        v = m[key]
        p = f"{path}.{key}"
        if not isinstance(v, Scalar):
            self.error(v.loc, p, f"expected {what}, found a {'list' if isinstance(v, Seq) else 'mapping'}")
            return default
        if v.is_null:
            return default
        if _BAD_CHARS_RE.search(v.text):
            self.error(v.loc, p, "contains control characters that XML cannot carry")
            return default
        return v.text

    def boolean(self, m: Map, key: str, path: str, default: bool) -> bool:
        if key not in m:
            return default
        v = m[key]
        if isinstance(v, Scalar) and v.is_bool:
            return v.as_bool()
        if isinstance(v, Scalar) and not v.quoted and v.text in ("0", "1"):
            return v.text == "1"
        if isinstance(v, Scalar) and v.text.lower() in ("true", "false"):
            return v.text.lower() == "true"
        found = f"'{v.text}'" if isinstance(v, Scalar) else "a list" if isinstance(v, Seq) else "a mapping"
        self.error(v.loc, f"{path}.{key}", f"expected true or false, found {found}")
        return default

    def integer(self, m: Map, key: str, path: str, default: int | None, lo: int, hi: int) -> int | None:
        t = self.text(m, key, path)
        if t is None:
            return default
        if not (t.isascii() and t.isdigit()) or not lo <= int(t) <= hi:
            self.error(m[key].loc, f"{path}.{key}", f"expected a whole number from {lo} to {hi}, found '{t}'")
            return default
        return int(t)

    def mapping(self, v, path: str) -> Map | None:
        if isinstance(v, Map):
            return v
        if isinstance(v, Scalar) and v.is_null:
            return None
        self.error(v.loc, path, "expected a mapping (key: value)")
        return None

    def settings(self, m: Map, key: str, path: str) -> tuple[tuple[tuple[str, str], ...], dict[str, Loc]]:
        if key not in m:
            return (), {}
        sm = self.mapping(m[key], f"{path}.{key}")
        if sm is None:
            return (), {}
        out, locs = [], {}
        for name, v in sm.items():
            p = f"{path}.{key}.{name}"
            if not _PARAM_RE.fullmatch(name):
                self.error(sm.locs[name], p, "not a valid Polycom parameter name (letters, digits, dots)")
                continue
            if not isinstance(v, Scalar) or v.is_null:
                self.error(sm.locs[name], p, "expected a single value (quote it to be safe)")
                continue
            if _BAD_CHARS_RE.search(v.text):
                self.error(v.loc, p, "contains control characters that XML cannot carry")
                continue
            out.append((name, v.text))
            locs[name] = sm.locs[name]
        return tuple(sorted(out)), locs


# ------------------------------------------------------------------ sections
TOP_KEYS = ("site", "extensions", "phones", "models", "contacts")
SITE_KEYS = ("name", "provisioning_url", "sip_server", "timezone", "ntp_server", "polling", "settings",
             "provisioning_auth", "dialing", "voicemail", "admin_password", "overrides")
DIALING_KEYS = ("emergency", "outside_prefix", "feature_codes", "digitmap")
ADMIN_PASSWORD_ENV = "POLYGEN_ADMIN_PASSWORD"
MAX_ADMIN_PASSWORD = 32  # device.auth.localAdminPassword is String_0_32 (XSD)
MAX_MWI_NUMBER = 64  # msg.mwi.N.callBack and .subscribe are String_0_64 (XSD)
_VOICEMAIL_RE = re.compile(r"^(?:[0-9]+|[*#][0-9*#]*)$")
AUTH_KEYS = ("user", "password", "previous")
PROV_PASSWORD_ENV = "POLYGEN_PROVISIONING_PASSWORD"
_AUTH_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
POLL_KEYS = ("mode", "time", "period", "time_random_end")
EXT_KEYS = ("ext", "first_name", "last_name", "secret", "mailbox", "directory", "display_name", "label",
            "shared")
PHONE_KEYS = ("mac", "model", "lines", "keys", "settings", "timezone", "description")
KEY_KINDS = ("blf", "speed_dial")
SPEED_DIAL_KEYS = ("number", "label")
_NUMBER_RE = re.compile(r"^\+?[0-9*#]{1,32}$")
MODEL_KEYS = ("name", "ua_token", "lines", "firmware", "part_number")
CONTACT_KEYS = ("number", "first_name", "last_name", "label")
_NAME_BYTES = 40  # fn, ln and lb of a directory entry (docs/polycom.md §4)


def _auth(ctx: _Ctx, m: Map, found: _Secrets, env) -> ProvAuth | None:
    p = "site.provisioning_auth"
    am = ctx.mapping(m["provisioning_auth"], p)
    if am is None:
        return None
    ctx.keys(am, p, AUTH_KEYS, ("user",))
    user = ctx.text(am, "user", p)
    if user is not None and not _AUTH_USER_RE.fullmatch(user):
        ctx.error(am["user"].loc, f"{p}.user", f"'{user}' is not a valid user name (letters, digits, . _ -)")
        user = None
    env_password = env.get(PROV_PASSWORD_ENV)
    if env_password and (why := secret_problem(env_password)):
        ctx.error(None, "", f"the provisioning password {why}", file=f"${PROV_PASSWORD_ENV}")
    inline = ctx.text(am, "password", p)
    if inline and (why := secret_problem(inline)):
        ctx.error(am["password"].loc, f"{p}.password", f"the password {why}")
    password = env_password or found.provisioning or inline
    if user is not None and not password:
        ctx.error(am.loc, f"{p}.password", f"missing password: set it here, as provisioning_password in the "
                                           f"secrets file or in ${PROV_PASSWORD_ENV}")
    if password and (":" in password or len(password) > 256):
        ctx.error(am.locs.get("password", am.loc), f"{p}.password", "a provisioning password may not contain ':' nor exceed 256 characters")
    previous = []
    prev = am.get("previous")
    if isinstance(prev, Seq):
        for i, item in enumerate(prev):
            ip = f"{p}.previous[{i}]"
            if not isinstance(item, Map):
                ctx.error(item.loc, ip, "expected {user: ..., password: ...}")
                continue
            ctx.keys(item, ip, ("user", "password"), ("user",))
            u = ctx.text(item, "user", ip)
            if u is not None and not _AUTH_USER_RE.fullmatch(u):
                ctx.error(item["user"].loc, f"{ip}.user", f"'{u}' is not a valid user name (letters, digits, . _ -)")
                continue
            inline = ctx.text(item, "password", ip)
            if inline and (why := secret_problem(inline)):
                ctx.error(item["password"].loc, f"{ip}.password", f"the password {why}")
            pw = found.previous.get(u) or inline if u else None
            if u and not pw:
                ctx.error(item.locs.get("password", item.loc), f"{ip}.password",
                          f"missing password for previous user '{u}': set it here or under "
                          f"provisioning_previous: in the secrets file")
            if u and pw:
                if u == user:
                    # nginx checks only the first line for a user name, so a rotation needs a new name
                    ctx.error(item.loc, f"{ip}.user", f"'{u}' is also the current user; rotate to a new user "
                                                      "name so old and new passwords are both accepted")
                previous.append((u, pw))
    elif prev is not None and not (isinstance(prev, Scalar) and prev.is_null):
        ctx.error(prev.loc, f"{p}.previous", "expected a list of {user: ..., password: ...}")
    if user and password:
        return ProvAuth(user, password, tuple(previous))
    return None


def _site(ctx: _Ctx, m: Map, found: _Secrets | None = None, env=None) -> Site | None:
    ctx.keys(m, "site", SITE_KEYS, ("name", "provisioning_url", "sip_server", "timezone"))
    name = ctx.text(m, "name", "site", "")
    url = ctx.text(m, "provisioning_url", "site")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ftp", "ftps", "tftp") or not parts.hostname:
            ctx.error(m["provisioning_url"].loc, "site.provisioning_url",
                      f"'{url}' is not a URL the phones can use; write it as http://host/")
        elif parts.path not in ("", "/"):
            # out/ is served at the server's root by polygen serve and polygen nginx
            ctx.warn(m["provisioning_url"].loc, "site.provisioning_url",
                     f"path '{parts.path}': polygen serve and polygen nginx serve out/ at the root; "
                     "map that prefix in your web server or use http://host/")
    sip = ctx.text(m, "sip_server", "site")
    host, port = None, None
    if sip is not None:
        host, port = _host_port(sip)
        if host is None:
            ctx.error(m["sip_server"].loc, "site.sip_server",
                      f"'{sip}' is not a host name, IP address or host:port")
    tz = ctx.text(m, "timezone", "site")
    if tz is not None:
        try:
            rules_for(tz, _rules_year())
        except UnknownZone:
            s = suggest_zone(tz)
            ctx.error(m["timezone"].loc, "site.timezone",
                      f"unknown time zone '{tz}'" + (f" (did you mean {s}?)" if s else "") +
                      "; use an IANA name such as America/New_York")
            tz = None
    ntp = ctx.text(m, "ntp_server", "site")
    if ntp is not None and _host_port(ntp)[0] is None:
        ctx.error(m["ntp_server"].loc, "site.ntp_server", f"'{ntp}' is not a host name or IP address")
    polling = Polling()
    if "polling" in m and (pm := ctx.mapping(m["polling"], "site.polling")) is not None:
        ctx.keys(pm, "site.polling", POLL_KEYS)
        mode = ctx.text(pm, "mode", "site.polling", "abs")
        if mode not in ("abs", "rel", "random"):
            ctx.error(pm["mode"].loc, "site.polling.mode", f"expected abs, rel or random, found '{mode}'")
        t = ctx.text(pm, "time", "site.polling", "01:00")
        if not _HHMM_RE.fullmatch(t):
            ctx.error(pm["time"].loc, "site.polling.time", f"expected a time as \"HH:MM\", found '{t}'")
        end = ctx.text(pm, "time_random_end", "site.polling")
        if end is not None and not _HHMM_RE.fullmatch(end):
            ctx.error(pm["time_random_end"].loc, "site.polling.time_random_end",
                      f"expected a time as \"HH:MM\", found '{end}'")
        if mode == "random" and end is None:
            ctx.error(pm.loc, "site.polling", "mode random needs time_random_end (\"HH:MM\")")
        period = ctx.integer(pm, "period", "site.polling", 86400, 3600, 31536000)
        polling = Polling(mode, _pad_hhmm(t), period, _pad_hhmm(end) if end else end)
    settings, settings_locs = ctx.settings(m, "settings", "site")
    if "device.auth.localAdminPassword" in settings_locs and "provisioning_auth" not in m:
        # the site file is 0644 without provisioning auth: anyone could read the password
        ctx.error(settings_locs["device.auth.localAdminPassword"], "site.settings.device.auth.localAdminPassword",
                  "would be in the site file, which everyone may read; use site.admin_password, which "
                  "goes into each phone's private file")
    env = os.environ if env is None else env
    found = found or _Secrets()
    auth = _auth(ctx, m, found, env) if "provisioning_auth" in m else None
    dialing = _dialing(ctx, m["dialing"]) if "dialing" in m else Dialing()
    voicemail = ctx.text(m, "voicemail", "site")
    if voicemail is not None and (not _VOICEMAIL_RE.match(voicemail) or len(voicemail) > MAX_MWI_NUMBER):
        ctx.error(m["voicemail"].loc, "site.voicemail",
                  f"'{voicemail}' is not a number the phones can dial: digits, or * or # then digits "
                  f"(e.g. \"*97\", quoted), at most {MAX_MWI_NUMBER} characters")
        voicemail = None
    admin = _admin_password(ctx, m, found, env)
    overrides = ctx.text(m, "overrides", "site", "keep")
    if overrides not in ("keep", "discard"):
        ctx.error(m["overrides"].loc, "site.overrides",
                  f"expected keep (a setting changed on a phone survives its reboot) or discard "
                  f"(the inventory's value comes back), found '{overrides}'")
        overrides = "keep"
    if None in (url, host, tz):
        return None
    return Site(name, url, host, port, tz, ntp, polling, settings, auth,
                dialing=dialing, voicemail=voicemail, admin_password=admin, overrides=overrides)


def _admin_password(ctx: _Ctx, m: Map, found: _Secrets, env) -> str | None:
    """``site.admin_password``: $POLYGEN_ADMIN_PASSWORD, then the secrets file, then inline."""
    where = "$" + ADMIN_PASSWORD_ENV if env.get(ADMIN_PASSWORD_ENV) else \
        "admin_password in the secrets file" if found.admin else None
    password = env.get(ADMIN_PASSWORD_ENV) or found.admin or ctx.text(m, "admin_password", "site")
    if not password:
        return None
    problem = None
    if len(password) > MAX_ADMIN_PASSWORD:
        problem = f"{len(password)} characters, but the phones take at most {MAX_ADMIN_PASSWORD}"
    elif not all(" " <= c <= "~" for c in password):
        problem = "only printable ASCII characters (letters, digits, space and punctuation) fit"
    if problem:
        ctx.error(m.locs.get("admin_password", m.loc), "site.admin_password",
                  problem + (f" (the password from {where})" if where else "") + "; choose another password")
        return None
    return password


def _digit_list(ctx: _Ctx, m: Map, key: str, path: str, check) -> tuple[str, ...]:
    """A list of numbers or codes (a single one is taken as a list of one)."""
    node = m.get(key)
    if node is None or (isinstance(node, Scalar) and node.is_null):
        return ()
    items = list(node) if isinstance(node, Seq) else [node]
    out = []
    for j, item in enumerate(items):
        p = f"{path}.{key}[{j}]" if isinstance(node, Seq) else f"{path}.{key}"
        if not isinstance(item, Scalar) or item.is_null:
            ctx.error(item.loc, p, "expected a number (quote it, e.g. \"911\")")
            continue
        problem = check(item.text)
        if problem:
            ctx.error(item.loc, p, problem)
            continue
        out.append(item.text)
    return tuple(out)


def _dialing(ctx: _Ctx, node) -> Dialing:
    """``site.dialing`` (see README, "Dialling"); every number is checked against the dial plan later."""
    from polygen.dialplan import DigitMapError, parse_digitmap

    p = "site.dialing"
    m = ctx.mapping(node, p)
    if m is None:
        return Dialing()
    ctx.keys(m, p, DIALING_KEYS)

    def digits(text: str) -> str | None:
        if not (text.isascii() and text.isdigit()):
            return f"'{text}' must be digits 0-9"
        return None

    def code(text: str) -> str | None:
        if text[:1] not in ("*", "#") or "|" in text:
            return f"'{text}' must be one digit-map rule starting with * or # (e.g. \"*97\" or \"*7x\"), quoted"
        try:
            parse_digitmap(text)
        except DigitMapError as e:
            return f"'{text}': {e.reason}"
        return None

    emergency = _digit_list(ctx, m, "emergency", p, digits)
    codes = _digit_list(ctx, m, "feature_codes", p, code)
    prefix = ctx.text(m, "outside_prefix", p)
    if prefix is not None and digits(prefix):
        ctx.error(m["outside_prefix"].loc, f"{p}.outside_prefix", digits(prefix) + " (e.g. \"9\")")
        prefix = None
    digitmap = ctx.text(m, "digitmap", p)
    if digitmap is not None:
        try:
            parse_digitmap(digitmap)
        except DigitMapError as e:
            ctx.error(m["digitmap"].loc, f"{p}.digitmap", f"character {e.position + 1}: {e.reason}")
            digitmap = None
    return Dialing(emergency, prefix, codes, digitmap)


def _pad_hhmm(t: str) -> str:
    """'1:00' -> '01:00': the phones document the parameter as HH:MM."""
    m = _HHMM_RE.fullmatch(t)
    return f"{int(m.group(1)):02d}:{m.group(2)}" if m else t


def _host_port(text: str) -> tuple[str | None, int | None]:
    host, port = text, None
    if text.startswith("["):  # [v6]:port
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None:
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            return None, None
        port = int(port)
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    return (host, port) if _HOST_RE.fullmatch(host) else (None, None)


def _model_overrides(ctx: _Ctx, m: Map, catalog: Catalog, file: str) -> None:
    for key, v in m.items():
        p = f"models.{key}"
        mm = ctx.mapping(v, p)
        if mm is None:
            continue
        ctx.keys(mm, p, MODEL_KEYS)
        fw = ctx.text(mm, "firmware", p)
        if fw is not None and not _RELEASE_RE.fullmatch(fw):
            ctx.error(mm["firmware"].loc, f"{p}.firmware",
                      f"'{fw}' is not a release directory name such as 5.9.7 (digits, dots, letters)")
            fw = None
        lines = ctx.integer(mm, "lines", p, None, 1, 34)
        ua = ctx.text(mm, "ua_token", p)
        if ua is not None and not _UA_TOKEN_RE.fullmatch(ua):
            ctx.error(mm["ua_token"].loc, f"{p}.ua_token", f"'{ua}' is not a User-Agent model token such as VVX_410")
            ua = None
        part = ctx.text(mm, "part_number", p)
        if part is not None and not _PART_RE.fullmatch(part):  # it names a file: <part>.sip.ld
            ctx.error(mm["part_number"].loc, f"{p}.part_number",
                      f"'{part}' is not a part number such as 3111-46162-001 (letters, digits, '-')")
            part = None
        changes = {k: v for k, v in (("firmware", fw), ("lines", lines), ("ua_token", ua),
                                     ("name", ctx.text(mm, "name", p)), ("part_number", part)) if v is not None}
        existing = catalog.find(key)
        if existing:
            catalog.replace(existing.key, **changes)
        elif {"ua_token", "lines", "firmware"} <= set(changes):
            catalog.add(Model(key=key, name=changes.get("name", key), ua_token=changes["ua_token"],
                              lines=changes["lines"], firmware=changes["firmware"],
                              part_number=changes.get("part_number", "")))
        else:
            ctx.error(mm.loc, p, f"'{key}' is not in the built-in catalog{_suggest(key, catalog.models)}; "
                                 "a new model needs ua_token, lines and firmware")


@dataclass(slots=True)
class _RawExt:
    ext: str
    file: str
    ext_line: int
    path: str
    obj: Extension
    mailbox_line: int

    @property
    def loc(self) -> Loc:
        return Loc(self.file, self.ext_line)


@dataclass
class _RawPhone:
    phone: Phone
    loc: Loc
    path: str
    lines_loc: Loc
    settings_locs: dict
    model_loc: Loc | None = None
    keys_loc: Loc | None = None


# ------------------------------------------------------------------ entry point
def inventory_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InventoryError(f"inventory directory '{directory}' does not exist; create it or pass -i DIR")
    files = [p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(directory).parts)
             and not (p.parent == directory and p.name in SECRETS_FILENAMES)]
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def _without_gc(fn):
    """Run ``fn`` with the cyclic garbage collector paused.

    Loading makes millions of small, acyclic objects (nodes, locations, dataclasses) that live
    until the load returns; each collection rescans all of them, which doubled the load time at
    100k phones (bench/RESULTS.md). Reference counting still frees everything; the collector
    resumes afterwards.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()
    return wrapper


@dataclass(slots=True)
class _ExtRec:
    """What one ``extensions[]`` item says, checked on its own (cacheable per file)."""

    path: str
    line: int
    ext_line: int
    ext: str
    first: str
    last: str
    inline_secret: str | None
    mailbox: str | None
    mailbox_line: int | None
    directory: bool
    display: str | None
    label: str | None
    shared: bool = False


@dataclass(slots=True)
class _PhoneRec:
    """What one ``phones[]`` item says, checked on its own (cacheable per file)."""

    path: str
    line: int
    mac: str | None
    mac_line: int
    model: str | None
    model_line: int
    lines: tuple[tuple[str, int, int], ...]  # (extension, line, index in the YAML list)
    lines_line: int | None
    lines_len: int
    tz: str | None
    settings: tuple[tuple[str, str], ...]
    settings_lines: tuple[tuple[str, int], ...]
    keys: tuple[tuple[str, str, str, int, int], ...] = ()  # (kind, target, label, line, index)
    keys_line: int | None = None  # the line of 'keys:'
    keys_len: int = 0


@dataclass
class _FileResult:
    """One inventory file after the checks that need nothing but the file itself."""

    name: str
    problems: list
    unparsed: bool = False
    site_line: int | None = None
    site: Map | None = None
    site_bad: bool = False
    models: Map | None = None
    exts: list = field(default_factory=list)
    phones: list = field(default_factory=list)
    contacts: list = field(default_factory=list)


def _check_file(f: Path, name: str) -> _FileResult:
    ctx = _Ctx()
    r = _FileResult(name, ctx.problems)
    doc, yproblems = load_file(f, name)
    for yp in yproblems:
        ctx.error(yp.loc, "", yp.message)
    if doc is None:
        r.unparsed = bool(yproblems)
        return r
    if not isinstance(doc, Map):
        ctx.error(doc.loc, "", "the file must be a mapping with site:, extensions:, phones: or models:")
        return r
    ctx.keys(doc, "", TOP_KEYS)
    if "site" in doc:
        r.site_line = doc.locs["site"].line
        if (sm := ctx.mapping(doc["site"], "site")) is not None:
            r.site = sm
        elif not (isinstance(doc["site"], Scalar) and doc["site"].is_null):
            r.site_bad = True  # reported as "expected a mapping"
    if "models" in doc:
        r.models = ctx.mapping(doc["models"], "models")
    for section, check, bucket in (("extensions", _check_ext, r.exts), ("phones", _check_phone, r.phones),
                                   ("contacts", _check_contact, r.contacts)):
        if section not in doc:
            continue
        seq = doc[section]
        if isinstance(seq, Scalar) and seq.is_null:
            continue
        if not isinstance(seq, Seq):
            ctx.error(seq.loc, section, f"expected a list of {section} ('- ' items)")
            continue
        for i, item in enumerate(seq):
            if not isinstance(item, Map):
                ctx.error(item.loc, f"{section}[{i}]", "expected a mapping")
                continue
            rec = check(ctx, item, f"{section}[{i}]")
            if rec is not None:
                bucket.append(rec)
    return r


def _code_digest() -> bytes:
    """Changes when the code that makes a _FileResult changes (cache entries then miss)."""
    import hashlib

    from polygen import __version__

    h = hashlib.blake2b(__version__.encode(), digest_size=16)
    here = Path(__file__).parent
    for n in ("inventory.py", "yamlnodes.py", "catalog.py", "tzrules.py"):
        st = (here / n).stat()
        h.update(f"{n}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.digest()


PARALLEL_MIN_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves


def _check_many(todo: list[tuple[Path, str]]) -> list[_FileResult]:
    """``_check_file`` for each (path, name); large inventories are parsed on every core.

    Workers are spawned, not forked: the sidecar rebuilds from a thread of a threaded process.
    """
    size = 0
    for f, _ in todo:
        try:
            size += f.stat().st_size
        except OSError:
            pass
    workers = min(len(todo), os.cpu_count() or 1, 8)
    if size < PARALLEL_MIN_BYTES or workers < 2:
        return [_check_file(f, name) for f, name in todo]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_check_file, [f for f, _ in todo], [n for _, n in todo], chunksize=4))


def _checked_files(files: list[Path], cache: Path | None) -> list[_FileResult]:
    """Each file's own checks, from the cache when its bytes are unchanged.

    A rebuild after editing one file re-parses that file only; the cross-file checks always run.
    Cache entries are pickles of plain records (they hold inline passwords: mode 0600, read only
    when owned by us and private), named by a digest of the code, the file's name and its bytes.
    """
    if cache is None:
        return _check_many([(f, str(f)) for f in files])
    import hashlib
    import pickle

    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    code = _code_digest()
    results: list[_FileResult | None] = []
    misses: list[tuple[int, Path, str, Path | None]] = []
    used: set[str] = set()
    uid = os.getuid()
    for i, f in enumerate(files):
        name = str(f)
        try:
            data = f.read_bytes()
        except OSError:
            results.append(None)
            misses.append((i, f, name, None))  # _check_file reports the error itself
            continue
        key = hashlib.blake2b(code + name.encode() + b"\0" + data, digest_size=20).hexdigest()
        entry = cache / f"{key}.pickle"
        used.add(entry.name)
        result = None
        try:
            with open(entry, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_uid == uid and not st.st_mode & 0o077:
                    result = pickle.load(fh)
        except FileNotFoundError:
            pass
        except Exception:  # a damaged entry is only slower
            result = None
        if not isinstance(result, _FileResult):
            result = None
            misses.append((i, f, name, entry))
        results.append(result)
    for (i, _, _, entry), result in zip(misses, _check_many([(f, n) for _, f, n, _ in misses])):
        results[i] = result
        if entry is None:
            continue
        tmp = cache / f".{entry.stem}.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.rename(tmp, entry)
        except OSError:
            tmp.unlink(missing_ok=True)
    for old in cache.iterdir():
        if old.name not in used:
            old.unlink(missing_ok=True)
    return results


@_without_gc
def load(directory: Path, secrets: Path | None = None, *, firmware: Path | None = None,
         env: dict | None = None, cache: Path | None = None) -> Inventory:
    """Read and validate every inventory file; raise InventoryError listing every problem.

    Warnings (unknown Polycom parameter names, a secrets file others can read…) do not fail the
    load; they are on ``Inventory.warnings``. ``cache``: a private directory where each file's own
    checks are kept, so that a rebuild re-reads only the files that changed.
    """
    directory = Path(directory)
    env = os.environ if env is None else env
    ctx = _Ctx()
    catalog = Catalog()
    files = inventory_files(directory)
    if not files:
        raise InventoryError(f"no *.yaml files in inventory directory '{directory}'")

    checked = _checked_files(files, cache)
    site_nodes: list[Map] = []
    site_keys: list[Loc] = []  # where each 'site:' key is, valid or not
    unparsed = any(r.unparsed for r in checked)  # cross-file references may point into such a file
    site_bad = any(r.site_bad for r in checked)
    for r in checked:
        ctx.problems.extend(r.problems)
        if r.site_line is not None:
            site_keys.append(Loc(r.name, r.site_line))
        if r.site is not None:
            site_nodes.append(r.site)
        if r.models is not None:
            _model_overrides(ctx, r.models, catalog, r.name)

    # site: exactly once
    site = None
    if not site_nodes and not site_bad and not unparsed:
        ctx.error(None, "site", "no 'site:' section in any inventory file; add one (see README)", file=str(directory))
    for extra in site_keys[1:]:
        ctx.error(extra, "site", f"'site:' is defined again (first at {site_keys[0]}); keep one")
    found = _load_secrets(ctx, directory, secrets)
    if site_nodes:
        site = _site(ctx, site_nodes[0], found, env)

    exts = _extensions(ctx, checked, found.by_ext, found.locs, env)
    phones = _phones(ctx, checked, exts, catalog, complete=not unparsed)
    contacts = _contacts(ctx, checked, exts)
    _check_directory(ctx, exts, contacts, phones, catalog)

    # raw parameter names the firmware does not know: warnings with the closest known name
    _check_params(ctx, site_nodes[0] if site_nodes else None, site, phones, catalog, firmware)
    _check_models(ctx, phones, catalog, firmware)
    advice: list[Problem] = []
    if site is not None:
        from polygen.dialcheck import plan_digitmap

        site = plan_digitmap(ctx, site_nodes[0], site, exts, phones)
        _check_mwi(ctx, site, exts)
        advice = _admin_advice(site_nodes[0], site_keys[0], site, phones, catalog)

    # report in the order of the files and lines (stable: same-line problems keep their order)
    order = {str(f): i for i, f in enumerate(files)}
    ctx.problems.sort(key=lambda p: (order.get(p.file, len(files)), p.line or 0))
    errors = [p for p in ctx.problems if p.severity == "error"]
    warnings = tuple(p for p in ctx.problems if p.severity == "warning")
    if errors or site is None:
        raise InventoryError(
            f"the inventory has {len(errors)} error{'s' if len(errors) != 1 else ''}", ctx.problems)
    extensions = {e.ext: e for e in sorted((r.obj for r in exts.values()), key=lambda e: e.ext)}
    return Inventory(site, extensions, tuple(sorted((r.phone for r in phones), key=lambda p: p.mac)),
                     catalog, warnings, tuple(str(f) for f in files), contacts,
                     tuple(advice), site_keys[0].file)


def mwi_address(site: Site, mailbox: str) -> str:
    """``msg.mwi.N.subscribe``: the mailbox at the SIP server, as the line registers there."""
    if "@" in mailbox:
        return mailbox
    host = f"[{site.sip_server}]" if ":" in site.sip_server else site.sip_server
    return f"{mailbox}@{host}" + (f":{site.sip_port}" if site.sip_port else "")


def _check_mwi(ctx: _Ctx, site: Site, exts: dict[str, _RawExt]) -> None:
    if not site.voicemail:
        return
    for r in exts.values():
        address = mwi_address(site, r.obj.mailbox)
        if len(address) > MAX_MWI_NUMBER:
            ctx.error(Loc(r.file, r.mailbox_line), f"{r.path}.mailbox",
                      f"the message-waiting subscription '{address}' is {len(address)} characters; "
                      f"the phones take {MAX_MWI_NUMBER} (a shorter mailbox or site.sip_server)")


def _admin_advice(site_node: Map, site_at: Loc, site: Site, phones: list[_RawPhone],
                  catalog: Catalog) -> list[Problem]:
    """What `check` says about the phones' own admin password (it opens their menus and web UI)."""
    if not site.admin_password:
        return [Problem(site_at.file, site_at.line, "site.admin_password",
                        "not set: every phone keeps the admin password it left the factory with (456), which "
                        "opens its settings menu and web interface; set it here, as admin_password in the "
                        f"secrets file or in ${ADMIN_PASSWORD_ENV}",
                        "warning")]
    # device.* came with UC Software 3.3: older releases take the password from the keypad only
    old = sorted((r.phone for r in phones if catalog.models[r.phone.model].dialect != "uc"), key=lambda p: p.mac)
    if not old:
        return []
    at = site_node.locs.get("admin_password", site_at)
    named = ", ".join(f"{p.mac} ({catalog.models[p.model].name}, {catalog.models[p.model].firmware})"
                      for p in old[:5]) + (f" and {len(old) - 5} more" if len(old) > 5 else "")
    return [Problem(at.file, at.line, "site.admin_password",
                    f"SIP 3.2 and older firmware takes no admin password from its configuration: {named} "
                    f"keep{'s' if len(old) == 1 else ''} the one set on the phone (456 from the factory); "
                    "change it in the phone's menu or web interface",
                    "warning")]


@dataclass
class _Secrets:
    """What the secrets file holds (everything optional)."""

    by_ext: dict[str, str] = field(default_factory=dict)
    locs: dict[str, Loc] = field(default_factory=dict)
    provisioning: str | None = None
    previous: dict[str, str] = field(default_factory=dict)  # previous provisioning user -> password
    admin: str | None = None  # the phones' admin password


SECRETS_KEYS = ("secrets", "provisioning_password", "provisioning_previous", "admin_password")


def _load_secrets(ctx: _Ctx, directory: Path, secrets: Path | None) -> _Secrets:
    found = _Secrets()
    path = secrets
    if path is None:
        for n in SECRETS_FILENAMES:
            if (directory / n).is_file():
                path = directory / n
                break
    if path is None:
        return found
    if not Path(path).is_file():
        ctx.error(None, "", f"secrets file '{path}' does not exist", file=str(path))
        return found
    if os.stat(path).st_mode & 0o004:
        ctx.warn(None, "", f"secrets file '{path}' is readable by everyone; run: chmod 600 {path}", file=str(path))
    doc, yproblems = load_file(Path(path), str(path))
    for yp in yproblems:
        ctx.error(yp.loc, "", yp.message)
    if doc is None:
        return found
    provisioning_only = isinstance(doc, Map) and "secrets" not in doc and any(k in doc for k in SECRETS_KEYS)
    if not provisioning_only and (not isinstance(doc, Map) or not isinstance(doc.get("secrets"), Map)):
        ctx.error(getattr(doc, "loc", None), "secrets",
                  "expected a mapping 'secrets:' of extension -> password", file=str(path))
        return found
    ctx.keys(doc, "", SECRETS_KEYS)
    sm = doc.get("secrets")
    for ext, v in (sm.items() if isinstance(sm, Map) else ()):
        if not isinstance(v, Scalar) or v.is_null:
            ctx.error(sm.locs[ext], f"secrets.{ext}", "expected the password as text")
            continue
        if why := secret_problem(v.text):
            ctx.error(v.loc, f"secrets.{ext}", f"the password {why}")
        found.by_ext[ext] = v.text
        found.locs[ext] = sm.locs[ext]
    found.provisioning = ctx.text(doc, "provisioning_password", "")
    if found.provisioning and (why := secret_problem(found.provisioning)):
        ctx.error(doc["provisioning_password"].loc, "provisioning_password", f"the password {why}")
    found.admin = ctx.text(doc, "admin_password", "")
    if found.admin and (why := secret_problem(found.admin)):
        ctx.error(doc["admin_password"].loc, "admin_password", f"the password {why}")
    if "provisioning_previous" in doc and (pm := ctx.mapping(doc["provisioning_previous"],
                                                             "provisioning_previous")) is not None:
        for user, v in pm.items():
            if not isinstance(v, Scalar) or v.is_null:
                ctx.error(pm.locs[user], f"provisioning_previous.{user}", "expected the password as text")
                continue
            if why := secret_problem(v.text):
                ctx.error(v.loc, f"provisioning_previous.{user}", f"the password {why}")
            found.previous[user] = v.text
    return found


def _env_secret_name(ext: str) -> str:
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", ext).upper()


def _check_ext(ctx: _Ctx, m: Map, path: str) -> _ExtRec | None:
    ctx.keys(m, path, EXT_KEYS, ("ext", "first_name"))
    ext = ctx.text(m, "ext", path)
    if ext is None:
        return None
    if not _EXT_RE.fullmatch(ext):
        ctx.error(m["ext"].loc, f"{path}.ext",
                  f"'{ext}' is not a valid extension (letters, digits, '.', '+', '-'; at most 64)")
        return None
    first = ctx.text(m, "first_name", path, "")
    last = ctx.text(m, "last_name", path, "")
    for key, val in (("first_name", first), ("last_name", last)):
        _check_name_bytes(ctx, m, path, key, val)
    inline = ctx.text(m, "secret", path)
    if inline and (why := secret_problem(inline)):
        ctx.error(m["secret"].loc, f"{path}.secret", f"the password {why}")
    mailbox = ctx.text(m, "mailbox", path)
    directory_flag = ctx.boolean(m, "directory", path, True)
    display = ctx.text(m, "display_name", path)
    label = ctx.text(m, "label", path)
    shared = ctx.boolean(m, "shared", path, False)
    mailbox_loc = m.locs.get("mailbox")
    return _ExtRec(path, m.loc.line, m.locs["ext"].line, ext, first, last, inline, mailbox,
                   mailbox_loc.line if mailbox_loc else None, directory_flag, display, label, shared)


def _check_name_bytes(ctx: _Ctx, m: Map, path: str, key: str, val: str) -> None:
    if len(val.encode()) > _NAME_BYTES:
        ctx.error(m[key].loc, f"{path}.{key}", f"{len(val.encode())} bytes in UTF-8, but at most {_NAME_BYTES} "
                                               "fit in the phone directory; shorten it")


@dataclass(slots=True)
class _ContactRec:
    """What one ``contacts[]`` item says, checked on its own (cacheable per file)."""

    path: str
    number_line: int
    contact: Contact


def _check_contact(ctx: _Ctx, m: Map, path: str) -> _ContactRec | None:
    ctx.keys(m, path, CONTACT_KEYS, ("number",))
    number = ctx.text(m, "number", path)
    names = {k: ctx.text(m, k, path, "") for k in ("first_name", "last_name", "label")}
    for key, val in names.items():
        _check_name_bytes(ctx, m, path, key, val)
    if number is None:
        return None
    if not number.strip() or number != number.strip() or len(number) > 255:
        ctx.error(m["number"].loc, f"{path}.number", f"'{number}' is not a number or SIP URI the phones can dial "
                                                     "(no spaces around it, at most 255 characters)")
        return None
    if not any(names.values()):
        ctx.error(m.loc, path, f"contact '{number}' needs a first_name, last_name or label to show in the directory")
    return _ContactRec(path, m["number"].loc.line, Contact(number, **names))


def _contacts(ctx: _Ctx, checked: list[_FileResult], exts: dict[str, _RawExt]) -> tuple[Contact, ...]:
    """The directory's contact field must be unique across contacts and listed extensions (docs/polycom.md §4)."""
    seen = {r.obj.mailbox: f"extension '{r.ext}' ({Loc(r.file, r.mailbox_line)})"
            for r in exts.values() if r.obj.directory}
    out = []
    for fr in checked:
        for r in fr.contacts:
            number = r.contact.number
            if number in seen:
                ctx.error(Loc(fr.name, r.number_line), f"{r.path}.number",
                          f"directory contact '{number}' is also used by {seen[number]}; "
                          "the phone directory needs unique contacts")
                continue
            seen[number] = f"contacts ({fr.name}:{r.number_line})"
            out.append(r.contact)
    return tuple(out)


def _extensions(ctx: _Ctx, checked: list[_FileResult], file_secrets: dict[str, str],
                secret_locs: dict[str, Loc], env) -> dict[str, _RawExt]:
    out: dict[str, _RawExt] = {}
    # read the environment once: os.environ lookups encode every key, 100k times over
    env_secrets = {k: v for k, v in env.items() if k.startswith(SECRET_ENV_PREFIX) and v}
    for fr in checked:
        name = fr.name
        for r in fr.exts:
            ext, path = r.ext, r.path
            if ext in out:
                ctx.error(Loc(name, r.ext_line), f"{path}.ext",
                          f"duplicate extension '{ext}' (first at {out[ext].loc})")
                continue
            env_secret = env_secrets.get(_env_secret_name(ext)) if env_secrets else None
            if env_secret and (why := secret_problem(env_secret)):
                ctx.error(None, "", f"the password for extension '{ext}' {why}", file=f"${_env_secret_name(ext)}")
            secret = env_secret or file_secrets.get(ext) or r.inline_secret
            if not secret:
                env_name = _env_secret_name(ext)
                ctx.error(Loc(name, r.line), f"{path}.secret",
                          f"missing secret for extension '{ext}': set it here, in the secrets file "
                          f"(secrets: {{\"{ext}\": …}}) or in ${env_name}")
                secret = ""
            display = r.display or " ".join(x for x in (r.first, r.last) if x) or ext
            obj = Extension(ext, r.first, r.last, secret, r.mailbox or ext, r.directory, display, r.label or ext,
                            r.shared)
            out[ext] = _RawExt(ext, name, r.ext_line, path, obj, r.mailbox_line or r.ext_line)
    # a secret for an extension that does not exist is probably a typo
    for ext, loc in secret_locs.items():
        if ext not in out:
            ctx.warn(loc, f"secrets.{ext}", f"no extension '{ext}' in the inventory{_suggest(ext, out)}")
    # the directory's contact field must be unique (docs/polycom.md §4: ct "cannot be Null or duplicated")
    seen: dict[str, _RawExt] = {}
    for r in out.values():
        e = r.obj
        if not e.directory:
            continue
        if e.mailbox in seen:
            ctx.error(Loc(r.file, r.mailbox_line), f"{r.path}.mailbox",
                      f"directory contact '{e.mailbox}' is also used by extension '{seen[e.mailbox].ext}' "
                      f"({seen[e.mailbox].loc}); the phone directory needs unique contacts: "
                      "set another mailbox or directory: false")
        else:
            seen[e.mailbox] = r
    return out


def _check_phone(ctx: _Ctx, m: Map, path: str) -> _PhoneRec:
    ctx.keys(m, path, PHONE_KEYS, ("mac", "model", "lines"))
    raw_mac = ctx.text(m, "mac", path)
    mac = None
    if raw_mac is not None:
        mac = normalise_mac(raw_mac)
        if mac is None:
            ctx.error(m["mac"].loc, f"{path}.mac",
                      f"'{raw_mac}' is not a MAC address; write 12 hex digits, e.g. 00:04:f2:12:34:56")
        elif mac == "000000000000":
            ctx.error(m["mac"].loc, f"{path}.mac", "000000000000 is reserved for the default files")
            mac = None
        elif mac[:6] not in POLYCOM_OUIS:
            ctx.warn(m["mac"].loc, f"{path}.mac",
                     f"{mac[:2]}:{mac[2:4]}:{mac[4:6]} is not a Polycom/Poly OUI; check the MAC")
    model_name = ctx.text(m, "model", path)
    lines: list[tuple[str, int, int]] = []
    lines_node = m.get("lines")
    lines_line, lines_len = None, 0
    if isinstance(lines_node, Seq):
        lines_line, lines_len = lines_node.loc.line, len(lines_node)
        for j, item in enumerate(lines_node):
            if not isinstance(item, Scalar) or item.is_null:
                ctx.error(item.loc, f"{path}.lines[{j}]", "expected an extension")
                continue
            lines.append((item.text, item.loc.line, j))
    elif lines_node is not None and not (isinstance(lines_node, Scalar) and lines_node.is_null):
        ctx.error(lines_node.loc, f"{path}.lines", "expected a list of extensions, e.g. [\"1001\"]")
    tz = ctx.text(m, "timezone", path)
    if tz is not None:
        try:
            rules_for(tz, _rules_year())
        except UnknownZone:
            s = suggest_zone(tz)
            ctx.error(m["timezone"].loc, f"{path}.timezone",
                      f"unknown time zone '{tz}'" + (f" (did you mean {s}?)" if s else ""))
            tz = None
    settings, slocs = ctx.settings(m, "settings", path)
    ctx.text(m, "description", path)
    keys, keys_len = _check_keys(ctx, m, path)
    mac_loc, model_loc = m.get("mac"), m.get("model")
    return _PhoneRec(path, m.loc.line, mac, mac_loc.loc.line if mac_loc is not None else m.loc.line,
                     model_name, model_loc.loc.line if model_loc is not None else m.loc.line,
                     tuple(lines), lines_line, lines_len, tz, settings,
                     tuple((n, loc.line) for n, loc in slocs.items()), keys,
                     m.locs["keys"].line if "keys" in m else None, keys_len)


def _check_keys(ctx: _Ctx, m: Map, path: str) -> tuple[tuple[tuple[str, str, str, int, int], ...], int]:
    """``keys:``, each item ``blf: EXT`` or ``speed_dial: {number: ..., label: ...}``; and how many."""
    node = m.get("keys")
    if node is None or (isinstance(node, Scalar) and node.is_null):
        return (), 0
    if not isinstance(node, Seq):
        ctx.error(node.loc, f"{path}.keys", 'expected a list of keys, e.g. [{blf: "1002"}]')
        return (), 0
    out = []
    for j, item in enumerate(node):
        kp = f"{path}.keys[{j}]"
        expected = 'expected either blf: "EXT" or speed_dial: {number: "...", label: "..."}'
        if not isinstance(item, Map):
            ctx.error(item.loc, kp, expected)
            continue
        ctx.keys(item, kp, KEY_KINDS)  # a misspelt kind is reported there, with a suggestion
        kinds = [k for k in item if k in KEY_KINDS]
        if len(kinds) != 1:
            if len(kinds) > 1 or not len(item):
                ctx.error(item.loc, kp, expected)
            continue
        if "blf" in item:
            ext = ctx.text(item, "blf", kp, what="an extension")
            if ext is not None:
                out.append(("blf", ext, "", item["blf"].loc.line, j))
            continue
        sp = f"{kp}.speed_dial"
        sm = ctx.mapping(item["speed_dial"], sp)
        if sm is None:
            ctx.error(item.loc, sp, 'expected {number: "...", label: "..."}')
            continue
        ctx.keys(sm, sp, SPEED_DIAL_KEYS, ("number",))
        number, label = ctx.text(sm, "number", sp), ctx.text(sm, "label", sp, "")
        if number is not None and not _NUMBER_RE.match(number):
            ctx.error(sm["number"].loc, f"{sp}.number",
                      f"'{number}' is not a number to dial: digits (also * and #), optionally after a '+'")
            number = None
        if len(label.encode()) > 40:
            ctx.error(sm["label"].loc, f"{sp}.label",
                      f"{len(label.encode())} bytes in UTF-8, but at most 40 fit in the phone directory; shorten it")
            label = None
        if number is not None and label is not None:
            out.append(("speed_dial", number, label, sm.loc.line, j))
    return tuple(out), len(node)


def _phones(ctx: _Ctx, checked: list[_FileResult], exts: dict[str, _RawExt], catalog: Catalog,
            complete: bool = True) -> list[_RawPhone]:
    out: list[_RawPhone] = []
    macs: dict[str, Loc] = {}
    models: dict[str, Model | None] = {}  # a site has few distinct spellings: look each up once
    carried: dict[str, tuple[Loc, str]] = {}  # extension -> where a phone first has it as a line
    for fr in checked:
        name = fr.name
        for r in fr.phones:
            path = r.path
            mac = r.mac
            if mac is not None:
                if mac in macs:
                    ctx.error(Loc(name, r.mac_line), f"{path}.mac", f"duplicate MAC {mac} (first at {macs[mac]})")
                    mac = None
                else:
                    macs[mac] = Loc(name, r.mac_line)
            model = None
            if r.model is not None:
                if r.model not in models:
                    models[r.model] = catalog.find(r.model)
                model = models[r.model]
                if model is None:
                    s = catalog.suggest(r.model)
                    ctx.error(Loc(name, r.model_line), f"{path}.model",
                              f"unknown model '{r.model}'" + (f" (did you mean {s}?)" if s else "") +
                              "; add it under models: if it is new")
            lines: list[str] = []
            for text, line, j in r.lines:
                if text not in exts:
                    if not complete:  # it may be in the file that did not parse; no guessing
                        continue
                    ctx.error(Loc(name, line), f"{path}.lines[{j}]",
                              f"no extension '{text}' in the inventory{_suggest(text, exts)}")
                elif text in lines:
                    ctx.error(Loc(name, line), f"{path}.lines[{j}]",
                              f"extension '{text}' is on this phone twice")
                else:
                    lines.append(text)
                    if mac is not None or r.mac is None:  # a duplicate MAC is the same phone again
                        _check_carried(ctx, carried, exts[text], Loc(name, line), f"{path}.lines[{j}]",
                                       mac or path)
            keys = _phone_keys(ctx, r, name, exts, complete)
            if model is not None and keys:
                _check_key_support(ctx, r, name, keys, model)
            if model is not None and r.lines_line is not None and r.lines_len > model.lines:
                ctx.error(Loc(name, r.lines_line), f"{path}.lines",
                          f"{r.lines_len} lines, but the {model.name} supports {model.lines}")
            elif model is not None and r.keys_len and r.lines_len + r.keys_len > model.lines:
                ctx.error(Loc(name, r.keys_line), f"{path}.keys",
                          f"{r.lines_len} line{'s' if r.lines_len != 1 else ''} and {r.keys_len} "
                          f"key{'s' if r.keys_len != 1 else ''}, but the {model.name} has {model.lines} "
                          f"line key{'s' if model.lines != 1 else ''}")
            if mac and model:
                out.append(_RawPhone(Phone(mac, model.key, tuple(lines), r.settings, r.tz,
                                           tuple(k for k, _, _ in keys)), Loc(name, r.line),
                                     path, Loc(name, r.lines_line or r.line),
                                     {n: Loc(name, ln) for n, ln in r.settings_lines},
                                     Loc(name, r.model_line), Loc(name, r.keys_line) if r.keys_line else None))
    return out


def _check_carried(ctx: _Ctx, carried: dict, ext: _RawExt, loc: Loc, path: str, phone: str) -> None:
    """An extension on two phones is two private registrations on one account (each phone takes
    the other's calls) unless it is a shared line. ``phone``: its MAC, or its path if it has none."""
    first = carried.get(ext.ext)
    if first is None:
        carried[ext.ext] = (loc, phone)
    elif not ext.obj.shared:
        ctx.error(loc, path, f"extension '{ext.ext}' is also a line of phone {first[1]} ({first[0]}); "
                             f"put it on one phone, or set shared: true on the extension ({ext.loc}) "
                             "to make it a shared line")


def _phone_keys(ctx: _Ctx, r: _PhoneRec, name: str, exts: dict[str, _RawExt],
                complete: bool) -> list[tuple[Key, int, int]]:
    keys: list[tuple[Key, int, int]] = []  # (key, line, index in the YAML list)
    seen: set[tuple[str, str]] = set()
    for kind, target, label, line, j in r.keys:
        kp = f"{r.path}.keys[{j}]"
        if kind == "blf" and target not in exts:
            if complete:
                ctx.error(Loc(name, line), f"{kp}.blf",
                          f"no extension '{target}' in the inventory{_suggest(target, exts)}")
            continue
        if (kind, target) in seen:
            what = "a busy lamp field for" if kind == "blf" else "a speed dial to"
            ctx.error(Loc(name, line), kp, f"{what} '{target}' is on this phone twice")
            continue
        seen.add((kind, target))
        keys.append((Key(kind, target, label), line, j))
    return keys


def _check_key_support(ctx: _Ctx, r: _PhoneRec, name: str, keys: list[tuple[Key, int, int]], model: Model) -> None:
    """Warn about keys the phone's firmware cannot carry as given (docs/polycom.md §10)."""
    if not has_static_blf(model):
        for key, line, j in keys:
            if key.kind == "blf":
                ctx.warn(Loc(name, line), f"{r.path}.keys[{j}].blf",
                         f"busy lamp fields need SIP 3.2 or later, but the {model.name} runs {model.firmware}; "
                         "this key is not written")
    elif not has_flexible_line_keys(model):
        first_sd = next((i for i, (key, _, _) in enumerate(keys) if key.kind == "speed_dial"), len(keys))
        if any(key.kind == "blf" for key, _, _ in keys[first_sd:]):
            ctx.warn(Loc(name, r.keys_line), f"{r.path}.keys",
                     f"the {model.name} ({model.firmware}) places busy lamp fields and speed dials itself "
                     "(lineKey.* needs UC Software 4), so a speed dial before a busy lamp field may not "
                     "keep its place")


def _check_directory(ctx: _Ctx, exts: dict[str, _RawExt], contacts, phones: list[_RawPhone],
                     catalog: Catalog) -> None:
    """Warn where the company directory (and a phone's own, with its speed dials) holds more
    contacts than a model keeps (dir.local.contacts.maxNum, docs/polycom.md §10)."""
    listed = {r.obj.mailbox for r in exts.values() if r.obj.directory} | {c.number for c in contacts}
    over: dict[str, tuple[Model, int, _RawPhone]] = {}  # model key -> (model, limit, first phone)
    limits: dict[str, int] = {}
    for r in phones:
        model = catalog.models[r.phone.model]
        limit = limits.get(model.key) or limits.setdefault(model.key, directory_limit(model))
        if len(listed) > limit:
            over.setdefault(model.key, (model, limit, r))
            continue
        if not r.phone.keys:
            continue
        own = len(listed) + sum(1 for k in r.phone.keys if k.kind == "speed_dial" and k.target not in listed)
        if own > limit:
            ctx.warn(r.keys_loc, f"{r.path}.keys",
                     f"with its speed dials this phone's directory lists {own} contacts, but a {model.name} "
                     f"keeps at most {limit}; remove speed dials or set directory: false on some extensions")
    if over:
        models = ", ".join(f"{m.name} ({limit})" for m, limit, _ in over.values())
        first = next(iter(over.values()))[2]  # the first phone, in file order, of a model over
        ctx.warn(first.model_loc, f"{first.path}.model",
                 f"the company directory lists {len(listed)} contacts, more than these models keep: {models}; "
                 "set directory: false on some extensions")


def _check_models(ctx: _Ctx, phones: list[_RawPhone], catalog: Catalog, firmware) -> None:
    """Per model in use: what the catalog could not confirm, and (given a firmware directory)
    whether the files the model fetches are there (polygen.firmware)."""
    from polygen.firmware import verify

    for key in sorted({r.phone.model for r in phones}):
        model = catalog.models[key]
        note = model.unverified_note()
        if note:
            ctx.warn(None, "", note)
        if firmware is not None:
            for severity, message in verify(model, Path(firmware)):
                (ctx.warn if severity == "warning" else ctx.error)(None, "", message)


def _check_params(ctx: _Ctx, site_node, site, phones: list[_RawPhone], catalog: Catalog, firmware) -> None:
    try:
        from polygen.params import catalog_for
    except ImportError:  # pragma: no cover - the name list ships with polygen
        return

    def cat(release: str):
        d = Path(firmware) / release if firmware else None
        return catalog_for(dialect_of(release), d if d and d.is_dir() else None)

    releases = sorted({catalog.models[r.phone.model].firmware for r in phones})
    if site_node is not None and site is not None:
        sm = site_node.get("settings")
        for name, _ in site.settings:
            cats = [cat(rel) for rel in releases] or [catalog_for("uc", None)]
            if not any(c.known(name) for c in cats):
                s = cats[0].suggest(name)
                ctx.warn(sm.locs[name] if isinstance(sm, Map) else site_node.loc, f"site.settings.{name}",
                         "unknown Polycom parameter" + (f" (did you mean {s}?)" if s else ""))
    for r in phones:
        if not r.phone.settings:
            continue
        release = catalog.models[r.phone.model].firmware
        c = cat(release)
        for name, _ in r.phone.settings:
            if not c.known(name):
                s = c.suggest(name)
                ctx.warn(r.settings_locs[name], f"{r.path}.settings.{name}",
                         f"unknown to {release} firmware" + (f" (did you mean {s}?)" if s else ""))
