"""Field parsing: ``_Ctx`` collects problems while it turns YAML nodes into typed values; the
patterns and key lists each section is checked against; MACs, host:port and HH:MM."""

from __future__ import annotations

import difflib
import ipaddress
import re

from polygen.inventory.model import Problem
from polygen.yamlnodes import Loc, Map, Scalar, Seq

POLYCOM_OUIS = ("0004f2", "64167f", "482567")

# Validators use fullmatch: ``$`` would also match before a trailing newline ("1001\n").
EXT_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-]{0,63}")
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


TOP_KEYS = ("site", "extensions", "phones", "models", "contacts")
SITE_KEYS = ("name", "provisioning_url", "sip_server", "timezone", "ntp_server", "polling", "settings",
             "provisioning_auth", "dialing", "voicemail", "admin_password", "overrides")
DIALING_KEYS = ("emergency", "outside_prefix", "feature_codes", "digitmap")
MAX_MWI_NUMBER = 64  # msg.mwi.N.callBack and .subscribe are String_0_64 (XSD)
_VOICEMAIL_RE = re.compile(r"^(?:[0-9]+|[*#][0-9*#]*)$")
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
