"""YAML text for the files an import writes, in the style of the shipped example.

Mappings and lists of mappings are block style, lists of scalars flow style (``lines: ["1001"]``).
A scalar is written plain only when every YAML reader takes it back as the same text (a name such
as ``Ada``); anything YAML 1.1 could read as a number, boolean, null or date (``0100``, ``yes``,
``1:00``), and anything with quotes, colons, ``#`` or outer spaces, is double-quoted. Extensions,
MACs, numbers and passwords are always quoted.
"""

from __future__ import annotations

import json
import re

_PLAIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9 _.()/&+-]*")
# YAML 1.1 reads these as booleans or null, in any case
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
# characters a YAML stream may not carry raw (controls, DEL, surrogates, non-characters, a byte
# order mark) or would read as a line break (NEL, LS, PS)
_UNPRINTABLE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff"
                             "\ufffe\uffff]")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def quoted(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def scalar(value, *, force_quotes: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    value = str(value)
    if (not force_quotes and _PLAIN_RE.fullmatch(value) and value.lower() not in _SPECIAL
            and not value.endswith(" ") and "  " not in value):
        return value
    return quoted(value)


def key(name: str) -> str:
    return name if KEY_RE.fullmatch(name) and name.lower() not in _SPECIAL else quoted(name)


QUOTED_KEYS = frozenset({"ext", "mac", "number", "mailbox", "label", "lines", "secret", "password",
                         "provisioning_password"})


def _value(k: str, v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(scalar(x, force_quotes=True) for x in v) + "]"
    return scalar(v, force_quotes=k in QUOTED_KEYS)


def _mapping(m: dict, indent: int, *, quote_values: bool = False) -> list[str]:
    pad = " " * indent
    out = []
    for k, v in m.items():
        if isinstance(v, dict):
            if not v:
                out.append(f"{pad}{key(k)}: {{}}")
                continue
            out.append(f"{pad}{key(k)}:")
            # raw settings are Polycom values: always text, so quoted
            out += _mapping(v, indent + 2, quote_values=quote_values or k in ("settings", "secrets"))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out.append(f"{pad}{key(k)}:")
            out += _items(v, indent + 2)
        else:
            text = scalar(v, force_quotes=True) if quote_values and not isinstance(v, list) else _value(k, v)
            out.append(f"{pad}{key(k)}: {text}")
    return out


def _items(items: list[dict], indent: int) -> list[str]:
    out = []
    for item in items:
        lines = _mapping(item, indent + 2)
        out.append(" " * indent + "- " + lines[0][indent + 2:])
        out += lines[1:]
    return out


def dump(doc: dict, comment: str = "") -> str:
    """A top-level mapping as YAML text, with ``comment`` (lines without '#') above it."""
    head = [f"# {ln}".rstrip() for ln in comment.splitlines()] if comment else []
    return "\n".join(head + _mapping(doc, 0)) + "\n"

