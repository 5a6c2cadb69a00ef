"""Edit the inventory from the command line, keeping every file as it was written.

Five edits: add a phone, give a phone a new MAC, remove a phone, add an extension (with a new
random password in the secrets file), remove an extension; and ``add_entries``, many extensions,
phones and passwords added as one edit (``polygen import csv --merge``), the way the first and
fourth add one. Each changes only the lines it must; a file is never re-serialised, because a
full YAML dump re-indents, re-spaces comments and rewrites values such as ``~`` in the parts
nobody touched. Where things are comes from the same YAML composer the inventory loader uses (so
lines match ``polygen check``); a new entry is rendered by ruamel.yaml in the style of its
siblings (indentation, flow or block lists, quoting; extensions always quoted, so ``0100`` stays
text, and any value YAML 1.1 would read as something else, such as ``yes``) and spliced in as
lines.

Before anything is written, the inventory as it would be is loaded and checked in a private
temporary copy; an edit that would leave an error is refused with every problem listed, and
nothing is written. Files are replaced atomically (a temporary file in the same directory,
fsync, rename), keeping their mode; a file changed by someone else meanwhile is not overwritten.

Where new entries go: ``file`` when given (a .yaml path inside the inventory directory, created
if missing); otherwise the file holding the most ``phones:`` (``extensions:``) entries, the
first in sorted order on a tie; when no file has the list, ``phones.yaml`` (``extensions.yaml``).
Replaced and removed entries are edited in the file that holds them.

Longer than 600 lines: the edits share one text model (locating entries by line, rendering
in the siblings' style, check-then-write); it could move to a module of its own, not done yet.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from secrets import token_urlsafe
from typing import Callable, Iterable, Mapping, Sequence

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from polygen.catalog import Catalog
from polygen.errors import InventoryError, PolygenError
from polygen.inventory import (
    EXT_RE,
    SECRETS_FILENAMES,
    Inventory,
    Problem,
    inventory_files,
    load,
    normalise_mac,
    secrets_file,
)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# the line breaks YAML counts (marks' line numbers); str.splitlines knows more
_BREAK_RE = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
# the inventory's rule for an extension (inventory.py checks it again on the result)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\ufffe\uffff]")
_NULLS = ("", "~", "null", "Null", "NULL")
_RESOLVER = yaml.resolver.Resolver()
# 24 characters of A-Z a-z 0-9 - _ (144 bits): nothing to escape in YAML, XML or a SIP header
SECRET_BYTES = 18
SECRETS_HEADER = "# SIP passwords by extension; keep this file out of git and private (chmod 600)."


@dataclass(frozen=True)
class EditResult:
    """What an edit did."""

    summary: str  # one line for the user: "inventory/phones.yaml:18: added phone …"
    files: tuple[Path, ...]  # the files written, in the order they were written
    inventory: Inventory  # the inventory as checked after the edit
    warnings: tuple[Problem, ...] = ()  # the check's warnings on the lines this edit wrote


@dataclass(frozen=True)
class Placed:
    """Where ``add_entries`` put an entry."""

    section: str  # extensions | phones
    file: Path
    index: int  # its position in that file's list
    first: int  # the lines it takes, 1-based
    last: int


@dataclass(frozen=True)
class Added:
    """What ``add_entries`` did."""

    placed: tuple[Placed, ...]  # the extensions, then the phones, each in the order given
    files: tuple[Path, ...]  # the files written, in the order they were written (none on a dry run)
    inventory: Inventory  # the inventory as checked after the edit
    warnings: tuple[Problem, ...]  # every warning of the check (those in a new entry as ``blame`` tells them)


# ---------------------------------------------------------------- public edits
def add_phone(directory: Path, mac: str, lines: Iterable[str], model: str | None = None, *,
              file: str | None = None, secrets: Path | None = None,
              lookup_reported_model: Callable[[str], str | None] | None = None) -> EditResult:
    """Add a phone with its extensions (in key order).

    ``model`` defaults to what ``lookup_reported_model(mac)`` returns (the model the phone
    reported when it was seen, e.g. its User-Agent token ``VVX_410``), written as the catalog's
    name; without either it is an error.
    """
    directory = Path(directory)
    norm = _valid_mac(mac)
    exts = _valid_exts(lines)
    inv = _Scan(directory)
    if norm in inv.phones:
        raise PolygenError(f"phone {norm} is already in the inventory ({inv.phones[norm][0].where})")
    for ext in exts:
        if ext not in inv.exts:
            raise PolygenError(f"no extension {ext} in the inventory; add it first: "
                               f"polygen ext add {ext} --first-name NAME")
    if model is None and lookup_reported_model is not None:
        reported = lookup_reported_model(norm)
        if reported:
            found = Catalog().find(reported)
            model = found.key if found else reported
    if model is None:
        raise PolygenError(f"no model for {norm}: give it with --model, e.g. --model VVX410")
    model = _valid_text(model.strip(), "the model")
    added = _add(inv, phones=[{"mac": mac.strip(), "model": model, "lines": exts}], file=file, secrets=secrets)
    (at,) = added.placed
    what = "line" if len(exts) == 1 else "lines"
    return EditResult(f"{at.file}:{at.first}: added phone {norm} ({model}; {what} {', '.join(exts)})",
                      added.files, added.inventory, _on(added.warnings, at.file, at.first, at.last))


def replace_phone(directory: Path, old_mac: str, new_mac: str, *, secrets: Path | None = None) -> EditResult:
    """Give the phone at ``old_mac`` a new MAC; its lines and settings stay as they are."""
    directory = Path(directory)
    old, new = _valid_mac(old_mac), _valid_mac(new_mac)
    if old == new:
        raise PolygenError(f"{old_mac} and {new_mac} are the same MAC ({old})")
    inv = _Scan(directory)
    entry = inv.phone(old)
    if new in inv.phones:
        raise PolygenError(f"phone {new} is already in the inventory ({inv.phones[new][0].where})")
    node = _get(entry.node, "mac")[1]
    if node.start_mark.line != node.end_mark.line:
        raise PolygenError(f"{entry.where}: the MAC is written over several lines; edit it by hand")
    text = _Text(entry.file.text)
    quote = node.style if node.style in ('"', "'") else None
    text.splice(node.start_mark.line, node.start_mark.column, node.end_mark.column,
                _scalar(new_mac.strip(), quote))
    line = node.start_mark.line + 1
    change = _Change(entry.file.path, entry.file.data, str(text))
    checked = _commit(inv, secrets, [change])
    return EditResult(f"{entry.file.name}:{line}: phone {old} is now {new}", (change.path,), checked,
                      _on(checked.warnings, entry.file.path, line, line))


def remove_phone(directory: Path, mac: str, *, secrets: Path | None = None) -> EditResult:
    """Remove the phone with this MAC (and the comment lines that belong to its entry)."""
    directory = Path(directory)
    norm = _valid_mac(mac)
    inv = _Scan(directory)
    entry = inv.phone(norm)
    change = _remove_entry(entry)
    checked = _commit(inv, secrets, [change])
    return EditResult(f"{entry.where}: removed phone {norm}", (change.path,), checked)


def add_extension(directory: Path, ext: str, first_name: str, last_name: str | None = None, *,
                  mailbox: str | None = None, file: str | None = None,
                  secrets: Path | None = None) -> EditResult:
    """Add an extension; a new random SIP password goes to the secrets file (created 0600).

    The password is never returned, printed or put in the inventory file.
    """
    directory = Path(directory)
    (ext,) = _valid_exts([ext])
    first_name = _valid_text(first_name.strip(), "the first name")
    fields: dict[str, str | list[str]] = {"ext": ext, "first_name": first_name}
    if last_name:
        fields["last_name"] = _valid_text(last_name.strip(), "the last name")
    if mailbox:
        fields["mailbox"] = _valid_text(mailbox.strip(), "the mailbox")
    inv = _Scan(directory)
    if ext in inv.exts:
        raise PolygenError(f"extension {ext} is already in the inventory ({inv.exts[ext][0].where})")
    added = _add(inv, extensions=[fields], passwords={ext: token_urlsafe(SECRET_BYTES)}, file=file,
                 secrets=secrets)
    (at,) = added.placed
    name = " ".join(x for x in (first_name, fields.get("last_name")) if x)
    return EditResult(f"{at.file}:{at.first}: added extension {ext} ({name}); its password is in "
                      f"{secrets_file(directory, secrets)}", added.files, added.inventory,
                      _on(added.warnings, at.file, at.first, at.last))


def remove_extension(directory: Path, ext: str, *, secrets: Path | None = None) -> EditResult:
    """Remove an extension and its password in the secrets file; refused while a phone has it."""
    directory = Path(directory)
    (ext,) = _valid_exts([ext])
    inv = _Scan(directory)
    entry = inv.ext(ext)
    if ext in inv.uses:
        uses = inv.uses[ext]
        phones = ", ".join(f"{mac} ({where})" for mac, where in uses)
        them = "phone" if len(uses) == 1 else "phones"
        raise PolygenError(f"extension {ext} is on {them} {phones}; remove it from the {them} first")
    changes = [_remove_entry(entry)]
    store = _File.read(secrets_file(directory, secrets), missing_ok=True)
    dropped = _drop_secret(store, ext)
    if dropped is not None:
        changes.append(dropped)  # after the entry: a stray password is only a warning
    checked = _commit(inv, secrets, changes)
    also = f" and its password from {store.name}" if dropped is not None else ""
    return EditResult(f"{entry.where}: removed extension {ext}{also}", tuple(c.path for c in changes), checked)


def add_entries(directory: Path, *, extensions: Sequence[dict] = (), phones: Sequence[dict] = (),
                passwords: Mapping[str, str] | None = None, new_files: Mapping[Path, str] | None = None,
                file: str | None = None, secrets: Path | None = None, private: bool = False,
                env: Mapping[str, str] | None = None, dry_run: bool = False,
                blame: Callable[[Problem, str, int, str], Problem] | None = None) -> Added:
    """Add many extensions and phones, their passwords and whole new files as one edit.

    Entries are field -> value mappings as the inventory writes them (``{"ext": "2001",
    "first_name": "Ada"}``, ``{"mac": …, "model": …, "lines": [...]}``), appended where
    ``add_extension`` and ``add_phone`` put theirs and in the same style; ``passwords``
    (extension -> password) go into the secrets file, made mode 0600 when ``private`` (else a
    file that exists keeps its mode); ``new_files`` (paths inside ``directory`` that must not
    exist yet) are written beside them. Everything is checked once, as a whole, and written only
    if the inventory would have no error (``dry_run``: only checked); ``env`` is the environment
    the check reads ``POLYGEN_SECRET_*`` from. ``blame(problem, section, i, rest)`` tells a
    problem of the check found in the ``i``-th given entry of ``section`` (``rest``: the field
    path after the entry, e.g. ``.lines[1]``) where its caller wants it told.
    """
    directory = Path(directory)
    inv = _Scan(directory)
    for path in new_files or {}:
        if not Path(path).is_relative_to(directory) or ".." in Path(path).parts:
            raise PolygenError(f"{path} is not inside {directory}; nothing written")
        if Path(path).exists():
            raise PolygenError(f"{path} already exists; nothing written")
    return _add(inv, extensions=extensions, phones=phones, passwords=passwords, new_files=new_files, file=file,
                secrets=secrets, private=private, env=env, dry_run=dry_run, blame=blame)


# ---------------------------------------------------------------- arguments
def _valid_mac(mac: str) -> str:
    norm = normalise_mac(mac)
    if norm is None:
        raise PolygenError(f"'{mac}' is not a MAC address; write 12 hex digits, e.g. 00:04:f2:12:34:56")
    if norm == "000000000000":
        raise PolygenError("000000000000 is reserved for the default files")
    return norm


def _valid_exts(exts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for ext in exts:
        if not EXT_RE.fullmatch(ext):
            raise PolygenError(f"'{ext}' is not a valid extension (letters, digits, '.', '+', '-'; at most 64)")
        if ext in out:
            raise PolygenError(f"extension {ext} is given twice")
        out.append(ext)
    if not out:
        raise PolygenError("give at least one extension")
    return out


def _valid_text(value: str, what: str) -> str:
    if not value:
        raise PolygenError(f"{what} is empty")
    if _CONTROL_RE.search(value):
        raise PolygenError(f"{what} contains line breaks or control characters")
    return value


# ---------------------------------------------------------------- files as text
class _Text:
    """A file's lines (each with its line break), numbered as the YAML parser numbers them."""

    def __init__(self, text: str):
        self.lines: list[str] = []
        pos = 0
        for m in _BREAK_RE.finditer(text):
            self.lines.append(text[pos:m.end()])
            pos = m.end()
        if pos < len(text):
            self.lines.append(text[pos:])
        self.newline = "\r\n" if "\r\n" in text else "\n"

    def __str__(self) -> str:
        return "".join(self.lines)

    def blank(self, i: int) -> bool:
        return 0 <= i < len(self.lines) and not self.lines[i].strip()

    def comment_indent(self, i: int) -> int | None:
        """The indentation of line ``i`` if it holds only a comment."""
        if not 0 <= i < len(self.lines):
            return None
        body = self.lines[i].lstrip(" ")
        return len(self.lines[i]) - len(body) if body.startswith("#") else None

    def splice(self, line: int, start: int, end: int, new: str) -> None:
        s = self.lines[line]
        self.lines[line] = s[:start] + new + s[end:]

    def insert(self, at: int, new: list[str]) -> None:
        if at > 0 and not self.lines[at - 1].endswith(_BREAKS):
            self.lines[at - 1] += self.newline
        self.lines[at:at] = [ln + self.newline for ln in new]

    def delete(self, first: int, last: int) -> None:
        del self.lines[first:last + 1]


@dataclass
class _Item:
    """One entry of a phones: or extensions: list, as the parser's events show it."""

    index: int
    line: int  # 1-based
    key: str | None  # the mac or ext as written
    lines: list[tuple[str, int]] = field(default_factory=list)  # a phone's (extension, line)


class _File:
    """One file as written: its text, its phones and extensions, and (when edited) its nodes."""

    def __init__(self, path: Path, data: bytes | None):
        self.path, self.data = path, data  # data None: the file does not exist (yet)
        try:
            self.text = "" if data is None else data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolygenError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        self.sections = self._yaml(lambda: _outline(self.text))
        self._root: Node | None = None

    @classmethod
    def read(cls, path: Path, missing_ok: bool = False) -> _File:
        try:
            return cls(path, path.read_bytes())
        except FileNotFoundError:
            if not missing_ok:
                raise
            return cls(path, None)

    @property
    def name(self) -> str:
        return str(self.path)

    def _yaml(self, fn):
        try:
            return fn()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else str(self.path)
            raise PolygenError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}); "
                               "fix it first (polygen check)") from None

    @property
    def root(self) -> Node | None:
        """The node graph, composed on first use: only edited files need it."""
        if self._root is None and self.text:
            self._root = self._yaml(lambda: yaml.compose(self.text, Loader=_Loader))
        return self._root

    def top(self) -> MappingNode | None:
        """The top-level mapping, None for an empty file; anything else cannot be edited."""
        if self.root is None:
            return None
        if not isinstance(self.root, MappingNode) or self.root.flow_style:
            raise PolygenError(f"{self.name}: the top level is not a block mapping (key: value lines); "
                               "edit it by hand")
        return self.root


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _skip(event, events) -> None:
    """Consume the rest of the node ``event`` starts."""
    depth = 1 if isinstance(event, _OPEN) else 0
    while depth:
        e = next(events)
        depth += 1 if isinstance(e, _OPEN) else -1 if isinstance(e, _CLOSE) else 0


def _pairs(events):
    """(key text or None, first event of the value) for each pair of the mapping being read."""
    while not isinstance(key := next(events), yaml.MappingEndEvent):
        if isinstance(key, _OPEN):
            _skip(key, events)
        yield (key.value if isinstance(key, yaml.ScalarEvent) else None), next(events)


def _outline(text: str) -> dict[str, list[_Item] | None]:
    """The phones: and extensions: lists of a file, read from the parser's events: composing
    every node of a large inventory costs six times as much, and only edited files need it."""
    events = yaml.parse(text, Loader=_Loader)
    out: dict[str, list[_Item] | None] = {}
    for e in events:
        if isinstance(e, (yaml.ScalarEvent, yaml.AliasEvent, *_OPEN)):
            break
    else:
        return out
    if isinstance(e, yaml.MappingStartEvent):
        for key, value in _pairs(events):
            if key in ("phones", "extensions") and isinstance(value, yaml.SequenceStartEvent):
                out[key] = _items(events, "mac" if key == "phones" else "ext")
            else:
                if key in ("phones", "extensions"):
                    out[key] = None  # there, but not a list
                _skip(value, events)
    else:
        _skip(e, events)
    for _ in events:  # the rest of the stream, for its errors (a second document...)
        pass
    return out


def _items(events, name: str) -> list[_Item]:
    items: list[_Item] = []
    while not isinstance(e := next(events), yaml.SequenceEndEvent):
        item = _Item(len(items), e.start_mark.line + 1, None)
        items.append(item)
        if not isinstance(e, yaml.MappingStartEvent):
            _skip(e, events)
            continue
        for key, value in _pairs(events):
            if key == name and isinstance(value, yaml.ScalarEvent):
                item.key = value.value
            elif key == "lines" and isinstance(value, yaml.SequenceStartEvent):
                while not isinstance(x := next(events), yaml.SequenceEndEvent):
                    if isinstance(x, yaml.ScalarEvent):
                        item.lines.append((x.value, x.start_mark.line + 1))
                    _skip(x, events)
            else:
                _skip(value, events)
    return items


def _get(mapping: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
    if isinstance(mapping, MappingNode):
        for k, v in mapping.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
    return None


def _empty(node: Node) -> bool:
    """``key:``, ``key: ~`` or ``key: []`` / ``{}``."""
    if isinstance(node, ScalarNode):
        return not node.style and node.value in _NULLS  # plain: None, or "" from libyaml
    return bool(node.flow_style) and not node.value


# ---------------------------------------------------------------- where entries are
@dataclass
class _Entry:
    file: _File
    section: str
    item: _Item

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.item.line}"

    @property
    def seq(self) -> SequenceNode:
        return _get(self.file.top(), self.section)[1]

    @property
    def node(self) -> MappingNode:
        return self.seq.value[self.item.index]


class _Scan:
    """Every inventory file as written, and where each phone and extension is."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.paths = inventory_files(directory)
        self.files = [_File.read(p) for p in self.paths]
        self.phones: dict[str, list[_Entry]] = {}
        self.exts: dict[str, list[_Entry]] = {}
        self.uses: dict[str, list[tuple[str, str]]] = {}  # ext -> [(MAC, file:line)]
        for f in self.files:
            for item in f.sections.get("phones") or ():
                mac = normalise_mac(item.key or "")
                if mac is None:
                    continue
                self.phones.setdefault(mac, []).append(_Entry(f, "phones", item))
                for ext, line in item.lines:
                    self.uses.setdefault(ext, []).append((mac, f"{f.name}:{line}"))
            for item in f.sections.get("extensions") or ():
                if item.key is not None:
                    self.exts.setdefault(item.key, []).append(_Entry(f, "extensions", item))

    def _one(self, found: list[_Entry] | None, what: str) -> _Entry:
        if not found:
            raise PolygenError(f"no {what} in the inventory")
        if len(found) > 1:
            raise PolygenError(f"{what} is in the inventory {len(found)} times "
                               f"({', '.join(e.where for e in found)}); fix that first")
        return found[0]

    def phone(self, mac: str) -> _Entry:
        return self._one(self.phones.get(mac), f"phone {mac}")

    def ext(self, ext: str) -> _Entry:
        return self._one(self.exts.get(ext), f"extension {ext}")

    def target(self, section: str, name: str | None, default: str) -> _File:
        """The file new ``section`` entries go to (see the module's docstring)."""
        if name is not None:
            path = _inside(self.directory, name)
        else:
            best, path = (0, False), self.directory / default
            for f in self.files:
                if section in f.sections and (rank := (len(f.sections[section] or ()), True)) > best:
                    best, path = rank, f.path
        for f in self.files:
            if f.path == path:
                return f
        return _File.read(path, missing_ok=True)


def _inside(directory: Path, name: str) -> Path:
    p = Path(name)
    if (p.is_absolute() or not p.parts or ".." in p.parts or p.suffix not in (".yaml", ".yml")
            or any(part.startswith(".") for part in p.parts)
            or (len(p.parts) == 1 and p.name in SECRETS_FILENAMES)):
        raise PolygenError(f"--file {name}: give a .yaml file inside {directory}, e.g. --file phones.yaml")
    path = directory / p
    real, top = os.path.realpath(path), os.path.realpath(directory)
    if not real.startswith(top + os.sep):
        raise PolygenError(f"--file {name}: {path} leads outside {directory}")
    return path


# ---------------------------------------------------------------- lines of an entry
def _dash(text: _Text, item: Node) -> tuple[int, int]:
    """(line, column) of the '-' that opens a block list item."""
    line, col = item.start_mark.line, item.start_mark.column
    head = text.lines[line][:col].rstrip()
    if head.endswith("-"):
        return line, len(head) - 1
    for i in range(line - 1, -1, -1):  # "-" alone on its line, the item below it
        body = text.lines[i].strip()
        if body == "-" or body.startswith(("- #", "-\t#")):
            return i, text.lines[i].index("-")
        if body and not body.startswith("#"):
            break
    return line, max(col - 2, 0)


def _end_line(text: _Text, node: Node, seen: set[int] | None = None) -> int:
    """The last line holding any of the node's text."""
    seen = set() if seen is None else seen
    seen.add(id(node))
    start, end = node.start_mark, node.end_mark
    if isinstance(node, ScalarNode) or node.flow_style:
        last = end.line if end.column > 0 or end.line == start.line else end.line - 1
        while last > start.line and text.blank(last):  # a block scalar ends where the next token starts
            last -= 1
        return last
    last = start.line
    children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
    for child in children:
        if id(child) not in seen:  # an alias is the node it names
            last = max(last, _end_line(text, child, seen))
    return last


def _span(text: _Text, item: Node) -> tuple[int, int, int]:
    """(first line, last line, dash column) of a block list item, with its own comments: those
    right above its '-' at the same indentation and those right below it, indented deeper."""
    line, col = _dash(text, item)
    first = line
    while text.comment_indent(first - 1) == col:
        first -= 1
    last = max(_end_line(text, item), line)
    while (ind := text.comment_indent(last + 1)) is not None and ind > col:
        last += 1
    return first, last, col


# ---------------------------------------------------------------- rendering in the siblings' style
@dataclass
class _Style:
    dash: int = 2  # column of the item's '-'
    content: int = 4  # column of the item's keys
    flow_item: bool = False  # - {mac: …, model: …}
    flow_lists: bool = True  # lines: ["1001"]
    list_dash: int = 2  # a block list under a key: '-' column relative to the key
    list_content: int = 4
    blank: bool = False  # entries separated by a blank line
    quotes: dict[str, str] = field(default_factory=dict)  # key ("lines[]": its items) -> quote every sibling uses


def _scalars(node: Node | None) -> list[ScalarNode]:
    return [n for n in node.value if isinstance(n, ScalarNode)] if isinstance(node, SequenceNode) else []


def _style(text: _Text, seq: SequenceNode) -> _Style:
    items = [n for n in seq.value if isinstance(n, MappingNode)]
    if not items:
        return _Style(dash=seq.start_mark.column, content=seq.start_mark.column + 2)
    last = items[-1]
    line, col = _dash(text, last)
    s = _Style(dash=col, content=last.start_mark.column if last.start_mark.line == line else col + 2,
               flow_item=bool(last.flow_style))
    seen: dict[str, set] = {}
    for item in items:
        for k, v in item.value:
            if not isinstance(k, ScalarNode):
                continue
            if isinstance(v, ScalarNode):
                seen.setdefault(k.value, set()).add(v.style)
            elif isinstance(v, SequenceNode):
                for n in _scalars(v):
                    seen.setdefault(k.value + "[]", set()).add(n.style)
                s.flow_lists = bool(v.flow_style)  # the last list written wins
                if not v.flow_style and v.value:
                    d = _dash(text, v.value[0])[1]
                    s.list_dash, s.list_content = d - k.start_mark.column, v.value[0].start_mark.column - k.start_mark.column
    s.quotes = {k: next(iter(st)) for k, st in seen.items() if len(st) == 1 and next(iter(st)) in ('"', "'")}
    if len(items) > 1:
        s.blank = text.blank(_span(text, last)[0] - 1)
    return s


def _yaml(style: _Style | None = None):
    from ruamel.yaml import YAML

    y = YAML()
    y.width = 1 << 20  # never fold a line
    if style is not None:
        y.indent(mapping=2, sequence=max(style.list_content, style.list_dash + 2), offset=style.list_dash)
    return y


def _quote(value, quote: str | None):
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    if not isinstance(value, str):
        return value
    if quote is None and _RESOLVER.resolve(ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        quote = '"'  # plain, YAML 1.1 (PyYAML, most readers) would not read it as text: yes, 1:00, ~
    if quote == '"':
        return DoubleQuotedScalarString(value)
    if quote == "'":
        return SingleQuotedScalarString(value)
    return value


def _dump(data, style: _Style | None = None) -> list[str]:
    buf = io.StringIO()
    _yaml(style).dump(data, buf)
    return buf.getvalue().split("\n")[:-1]


def _scalar(value: str, quote: str | None) -> str:
    """``value`` as YAML: in ``quote``, or plain when ruamel.yaml finds that safe."""
    (line,) = _dump({"k": _quote(value, quote)})
    return line[3:]


def _render(fields: dict, style: _Style, quoted: tuple[str, ...]) -> list[str]:
    """A list item holding ``fields``, as lines at the siblings' indentation."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    m = CommentedMap()
    for key, value in fields.items():
        if isinstance(value, list):
            q = style.quotes.get(key + "[]", '"' if key + "[]" in quoted else None)
            seq = CommentedSeq([_quote(v, q) for v in value])
            if style.flow_lists or style.flow_item:
                seq.fa.set_flow_style()
            else:
                seq.fa.set_block_style()
            m[key] = seq
        else:
            m[key] = _quote(value, style.quotes.get(key, '"' if key in quoted else None))
    if style.flow_item:
        m.fa.set_flow_style()
    body = _dump(m, style)
    head = " " * style.dash + "-" + " " * (style.content - style.dash - 1)
    return [head + body[0]] + [" " * style.content + ln for ln in body[1:]]


# ---------------------------------------------------------------- the edits, as text
@dataclass
class _Change:
    path: Path
    before: bytes | None  # the bytes read (None: a new file)
    after: str
    mode: int | None = None  # for a new file (None: 0666 less the umask)
    private: bool = False  # 0600 whatever the file's mode was


def _open_block(text: _Text, key: ScalarNode, value: Node, what: str) -> int:
    """Make ``key: ~`` / ``key: []`` ready for block items below it; the line to insert at."""
    if value.end_mark.line == key.start_mark.line and value.end_mark.column > value.start_mark.column:
        line = text.lines[key.start_mark.line]
        text.lines[key.start_mark.line] = line[:value.start_mark.column].rstrip() + line[value.end_mark.column:]
    elif value.end_mark.line != key.start_mark.line and not isinstance(value, ScalarNode):
        raise PolygenError(f"{what}: an empty list written over several lines; edit it by hand")
    return key.start_mark.line + 1


_QUOTED = {"extensions": ("ext", "mailbox"), "phones": ("lines[]",)}  # always quoted, unless siblings say
_ENTRY_RE = re.compile(r"^(extensions|phones)\[(\d+)\]")


def _add(inv: _Scan, *, extensions: Sequence[dict] = (), phones: Sequence[dict] = (),
         passwords: Mapping[str, str] | None = None, new_files: Mapping[Path, str] | None = None,
         file: str | None = None, secrets: Path | None = None, private: bool = False,
         env: Mapping[str, str] | None = None, dry_run: bool = False,
         blame: Callable[[Problem, str, int, str], Problem] | None = None) -> Added:
    """Plan every splice (each file edited on top of the splices before), then check and write once."""
    edited: dict[Path, _File] = {}  # each file as it is after the splices so far
    before: dict[Path, bytes | None] = {}
    placed: list[Placed] = []
    given: dict[tuple[str, str, int], int] = {}  # (file, section, index in the file) -> index given
    for section, entries in (("extensions", extensions), ("phones", phones)):
        if not entries:
            continue
        target = inv.target(section, file, f"{section}.yaml")
        f = edited.get(target.path, target)
        before.setdefault(f.path, f.data)
        start = len(f.sections.get(section) or ())
        text, at, n, spans = _add_items(f, section, entries, _QUOTED[section])
        # the lines of entries placed before in this file, below the new ones, move down
        placed = [replace(p, first=p.first + n, last=p.last + n) if p.file == f.path and p.first > at else p
                  for p in placed]
        for i, (first, last) in enumerate(spans):
            placed.append(Placed(section, f.path, start + i, first, last))
            given[(str(f.path), section, start + i)] = i
        edited[f.path] = _File(f.path, text.encode("utf-8"))
    changes = []
    if passwords:  # the passwords first: an extension without one would not build
        store = _File.read(secrets_file(inv.directory, secrets), missing_ok=True)
        changes.append(_set_secrets(store, passwords, private))
    changes += [_Change(Path(path), None, text) for path, text in (new_files or {}).items()]
    changes += [_Change(path, before[path], f.text) for path, f in edited.items()]

    def tell(p: Problem) -> Problem:
        m = _ENTRY_RE.match(p.path)
        i = given.get((p.file, m.group(1), int(m.group(2)))) if m else None
        return p if i is None or blame is None else blame(p, m.group(1), i, p.path[m.end():])

    checked = _commit(inv, secrets, changes, env=env, dry_run=dry_run, tell=tell)
    return Added(tuple(placed), () if dry_run else tuple(c.path for c in changes), checked, checked.warnings)


def _add_items(f: _File, section: str, items: Sequence[dict],
               quoted: tuple[str, ...]) -> tuple[str, int, int, list[tuple[int, int]]]:
    """Append ``items`` to ``section`` in ``f``: the new text, the line (0-based) the lines were
    inserted at, how many, and each item's first and last line (1-based) in the new text."""
    text = _Text(f.text)
    pair = _get(f.top(), section)
    new: list[str] = []
    if pair is None:  # a new section at the end of the file
        style = _Style()
        if text.lines and not text.blank(len(text.lines) - 1):
            new.append("")
        new.append(f"{section}:")
        at = len(text.lines)
    else:
        key, value = pair
        if isinstance(value, SequenceNode) and not value.flow_style and value.value:
            style = _style(text, value)
            at = _span(text, value.value[-1])[1] + 1
        elif _empty(value):
            at = _open_block(text, key, value, f"{f.name}:{key.start_mark.line + 1}")
            col = key.start_mark.column
            style = _Style(dash=col + 2, content=col + 4)
        else:
            raise PolygenError(f"{f.name}:{key.start_mark.line + 1}: {section}: is not a list of '- ' items; "
                               "add it by hand")
    spans = []
    for fields in items:
        block = ([""] if style.blank else []) + _render(fields, style, quoted)
        lead = next(i for i, ln in enumerate(block) if ln.lstrip().startswith("-"))
        spans.append((at + len(new) + lead + 1, at + len(new) + len(block)))
        new += block
    text.insert(at, new)
    return str(text), at, len(new), spans


def _remove_entry(entry: _Entry) -> _Change:
    f = entry.file
    if entry.seq.flow_style:
        raise PolygenError(f"{entry.where}: the entry is in a [ ... ] list; remove it by hand")
    text = _Text(f.text)
    first, last, _ = _span(text, entry.node)
    if text.blank(first - 1) and text.blank(last + 1):
        last += 1  # entries separated by blank lines keep one between them
    elif text.blank(first - 1) and entry.item.index == len(entry.seq.value) - 1 and entry.item.index > 0:
        first -= 1
    text.delete(first, last)
    return _Change(f.path, f.data, str(text))


def _secrets_map(f: _File) -> tuple[ScalarNode, Node] | None:
    pair = _get(f.top(), "secrets")
    if pair is not None and not (isinstance(pair[1], MappingNode) or _empty(pair[1])):
        raise PolygenError(f"{f.name}:{pair[0].start_mark.line + 1}: secrets: is not a mapping of "
                           "extension -> password; fix it first (polygen check)")
    return pair


def _set_secrets(f: _File, passwords: Mapping[str, str], private: bool) -> _Change:
    """``secrets: {ext: password, …}`` in the secrets file, which is created 0600 if missing
    (and made 0600 if ``private``); a password there already is replaced where it is."""
    text = _Text(f.text)
    pair = _secrets_map(f)
    quote = '"'
    todo = dict(passwords)
    if pair is not None and isinstance(pair[1], MappingNode) and pair[1].value:
        keys = [k for k, _ in pair[1].value]
        quote = keys[-1].style if keys[-1].style in ('"', "'") else '"'
        spliced = []
        for k, v in pair[1].value:
            if isinstance(k, ScalarNode) and k.value in todo:  # a password left over: replaced
                if not isinstance(v, ScalarNode) or v.start_mark.line != v.end_mark.line:
                    raise PolygenError(f"{f.name}:{k.start_mark.line + 1}: secrets.{k.value}: edit it by hand")
                spliced.append((v.start_mark.line, v.start_mark.column, v.end_mark.column, todo.pop(k.value)))
        for line, start, end, password in sorted(spliced, reverse=True):  # from the right: columns stay true
            text.splice(line, start, end, _scalar(password, '"'))
    if todo:
        entries = [_scalar(ext, quote) + ": " + _scalar(password, '"') for ext, password in todo.items()]
        if pair is None:
            new = ([SECRETS_HEADER] if f.data is None else [""] if text.lines and not text.blank(len(text.lines) - 1)
                   else []) + ["secrets:"] + ["  " + e for e in entries]
            at = len(text.lines)
        elif isinstance(pair[1], MappingNode) and pair[1].value and not pair[1].flow_style:
            at = _end_line(text, pair[1]) + 1
            new = [" " * pair[1].value[-1][0].start_mark.column + e for e in entries]
        elif _empty(pair[1]):
            at = _open_block(text, pair[0], pair[1], f"{f.name}:{pair[0].start_mark.line + 1}")
            new = [" " * (pair[0].start_mark.column + 2) + e for e in entries]
        else:
            raise PolygenError(f"{f.name}:{pair[0].start_mark.line + 1}: secrets: is a {{ ... }} mapping; "
                               "add the password by hand")
        text.insert(at, new)
    return _Change(f.path, f.data, str(text), 0o600, private)


def _drop_secret(f: _File, ext: str) -> _Change | None:
    pair = _secrets_map(f) if f.data is not None else None
    if pair is None or not isinstance(pair[1], MappingNode):
        return None
    key, mapping = pair
    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.value == ext:
            if mapping.flow_style:
                raise PolygenError(f"{f.name}:{k.start_mark.line + 1}: secrets.{ext} is in a {{ ... }} mapping; "
                                   "remove it by hand")
            text = _Text(f.text)
            text.delete(k.start_mark.line, _end_line(text, v))
            if len(mapping.value) == 1:  # the file must still say secrets: {}
                line = text.lines[key.start_mark.line]
                colon = line.index(":", key.end_mark.column)
                text.lines[key.start_mark.line] = line[:colon + 1] + " {}" + line[colon + 1:]
            return _Change(f.path, f.data, str(text))
    return None


# ---------------------------------------------------------------- check, then write
def _same(p: Problem) -> Problem:
    return p


def _commit(inv: _Scan, secrets: Path | None, changes: list[_Change], *, env: Mapping[str, str] | None = None,
            dry_run: bool = False, tell: Callable[[Problem], Problem] = _same) -> Inventory:
    """Check the inventory as it would be; write the changes only if it has no error. ``tell``
    moves each problem of the check to where the caller wants it told."""
    checked = _check(inv, secrets, changes, env, tell)
    if not dry_run:
        for c in changes:  # nothing is written if any file changed meanwhile
            _unchanged(c)
        for c in changes:
            _write(c)
    return replace(checked, warnings=tuple(map(tell, checked.warnings)))


def _on(warnings: Iterable[Problem], path: Path, first: int, last: int) -> tuple[Problem, ...]:
    """The warnings on lines ``first`` to ``last`` of ``path``: those of the lines an edit wrote."""
    return tuple(w for w in warnings if w.file == str(path) and w.line in range(first, last + 1))


def _check(inv: _Scan, secrets: Path | None, changes: list[_Change], env: Mapping[str, str] | None = None,
           tell: Callable[[Problem], Problem] = _same) -> Inventory:
    directory = inv.directory
    secrets_at = secrets_file(directory, secrets)
    after = {c.path: c.after.encode("utf-8") for c in changes}
    with tempfile.TemporaryDirectory(prefix="polygen-edit-") as tmp:
        root = Path(tmp) / "inventory"
        root.mkdir()
        for path in dict.fromkeys([*inv.paths, *(c.path for c in changes if c.path != secrets_at)]):
            dst = root / path.relative_to(directory)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(after[path] if path in after else path.read_bytes())
        moved = {str(root): str(directory)}
        given = secrets_at if secrets is not None else None  # load() reports a missing one
        if secrets_at in after or secrets_at.is_file():
            given = Path(tmp) / "secrets" / secrets_at.name
            given.parent.mkdir()
            given.write_bytes(after[secrets_at] if secrets_at in after else secrets_at.read_bytes())
            private = any(c.private for c in changes if c.path == secrets_at)
            mode = 0o600 if private or not secrets_at.exists() else stat.S_IMODE(secrets_at.stat().st_mode)
            given.chmod(mode)  # so that the readable-by-everyone warning says the truth
            moved[str(given)] = str(secrets_at)
        try:
            return _moved(load(root, secrets=given, env=env), moved)
        except InventoryError as exc:
            problems = [tell(_move(p, moved)) for p in exc.problems]
            n = sum(1 for p in problems if p.severity == "error")
            raise InventoryError(f"nothing written: the inventory would have {n} error{'s' if n != 1 else ''} "
                                 "after this edit", problems) from None


def _rename(text: str, moved: dict[str, str]) -> str:
    """Names in the temporary copy -> the real names."""
    for old, new in moved.items():
        text = text.replace(old, new)
    return text


def _move(p: Problem, moved: dict[str, str]) -> Problem:
    return replace(p, file=_rename(p.file, moved), message=_rename(p.message, moved))


def _moved(inventory: Inventory, moved: dict[str, str]) -> Inventory:
    return replace(inventory, warnings=tuple(_move(w, moved) for w in inventory.warnings),
                   sources=tuple(_rename(s, moved) for s in inventory.sources))


def _unchanged(c: _Change) -> None:
    try:
        now = Path(os.path.realpath(c.path)).read_bytes()
    except FileNotFoundError:
        now = None
    if now != c.before:
        raise PolygenError(f"{c.path} changed while it was being edited; nothing written, run the command again")


def _write(c: _Change) -> None:
    """Replace the file atomically, keeping its mode (and owner, when allowed)."""
    target = Path(os.path.realpath(c.path))
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    if c.private:
        mode = 0o600
    elif st is not None:
        mode = stat.S_IMODE(st.st_mode)
    elif c.mode is not None:
        mode = c.mode
    else:
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(c.after.encode("utf-8"))
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):
                    os.fchown(fh.fileno(), st.st_uid, st.st_gid)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
