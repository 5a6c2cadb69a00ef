"""Text that is safe to show: control characters made visible, credentials masked.

Phones send text (log lines, User-Agents) and servers answer text (configs, directories) that
polygen prints. ``visible`` makes every character that could drive a terminal (CR, ESC and so
CSI/OSC sequences, BEL, VT, FF, every other C0 and C1 control, DEL) or reorder what is shown
(bidirectional overrides, line and paragraph separators) into a visible escape, on a terminal
and in a pipe alike. ``json_dumps`` does the same inside JSON strings (json.dumps escapes C0
only).

``mask`` hides credentials wherever polygen prints files or log text (``polygen diff``,
``polygen logs``, ``polygen simulate``): the values of Polycom parameters that hold a password,
key, PIN or other secret (``is_credential``: ``reg.1.auth.password``, ``device.prov.password``,
``device.sec.configEncryption.key``, ``reg.1.pin``, ``sec.uploadDevice.privateKey``, ...), the
hashes of ``.htpasswd`` lines, and any known secret value wherever else it appears.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = ["MASK", "is_credential", "json_dumps", "mask", "visible"]

MASK = "********"

# C0 (but not newline: callers print lines), DEL, C1, and the characters that reorder text.
_CONTROL = "\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL_RE = re.compile(f"[{_CONTROL}]")
_NAMED = {"\t": "\\t", "\r": "\\r", "\x1b": "\\e"}
# what json.dumps leaves as it is but a terminal would obey (it escapes C0 itself)
_JSON_CONTROL_RE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character as a visible escape (``\\e``, ``\\r``, ``\\x07``,
    ``\\x9b``, ``\\u202e``); with ``newlines``, ``\\n`` too."""
    text = _CONTROL_RE.sub(_escape, text)
    return text.replace("\n", "\\n") if newlines else text


def json_dumps(value, **kw) -> str:
    """``json.dumps`` (UTF-8 kept readable) with DEL, C1 and bidirectional controls escaped too."""
    kw.setdefault("ensure_ascii", False)
    return _JSON_CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, **kw))


# A parameter whose value is a credential: its last name segment ends in password, passwd,
# passphrase, secret, psk or privateKey, or is key, pin, pwd or token (``.hashed`` may follow).
# ``.set`` flags, log levels (log.level.change.key) and digit counts stay visible.
_CREDENTIAL_ENDINGS = ("password", "passwd", "passphrase", "secret", "psk", "privatekey")
_CREDENTIAL_SEGMENTS = ("key", "pin", "pwd", "token")
# name="value" (XML attributes, key="value" log text) and name=value / name: value
_NAME_RE = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z_][A-Za-z0-9_.-]*(?=\s*[=:])", re.ASCII)
_VALUE_RE = re.compile(r"""(\s*[=:]\s*)(?:(["'])(.*?)\2|([^\s"'<>,;&]+))""")
# .htpasswd: user:{SCHEME}hash, user:$apr1$..., user:hash (a whole line)
_HTPASSWD_LINE_RE = re.compile(r"^([^:\s#][^:\n]*):([^\n]+)$", re.MULTILINE)


def is_credential(name: str) -> bool:
    """Does this Polycom parameter (or log field) name hold a credential?"""
    lowered = name.lower()
    if lowered.startswith("log.level.change."):
        return False
    segments = lowered.removesuffix(".hashed").split(".")
    last = segments[-1]
    return last in _CREDENTIAL_SEGMENTS or last.endswith(_CREDENTIAL_ENDINGS)


def _mask_assignments(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _NAME_RE.finditer(text):
        if m.start() < pos or not is_credential(m.group()):
            continue
        v = _VALUE_RE.match(text, m.end())
        if v is None:
            continue
        quote = v.group(2) or ""
        out += [text[pos:m.end()], v.group(1), quote, MASK, quote]
        pos = v.end()
    out.append(text[pos:])
    return "".join(out)


def mask(text: str, secrets: Iterable[str] = (), *, htpasswd: bool = False) -> str:
    """``text`` with credentials masked: credential parameters' values, every known secret of
    three characters or more, and with ``htpasswd`` (the text is a ``.htpasswd``) every hash."""
    if htpasswd:
        text = _HTPASSWD_LINE_RE.sub(lambda m: f"{m[1]}:{MASK}", text)
    text = _mask_assignments(text)
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 3:
            text = text.replace(s, MASK)
    return text
