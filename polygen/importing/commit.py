"""Check an import with the full inventory load, then write it, all or nothing.

A ``Draft`` holds what an import made: new list entries (each remembering the row or file it
came from), maybe a site, and the passwords. ``commit`` lays it out as new files of the target
inventory, loads the result in a private temporary copy with ``inventory.load``, and writes only
when that load has no error; ``merge`` adds the entries to an existing inventory with the edits
of ``polygen.edit`` (the ones ``phone add`` and ``ext add`` make: every other line, comments
included, stays as it was), checked the same way, as a whole, first. Problems in what the
import added are reported at the place the entry came from (``phones.csv:17: MAC Address: …``). Passwords go only into the
secrets file (mode 0600), never into a file meant for git, and the inventory's ``.gitignore``
is made to list that file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from polygen.errors import InventoryError, PolygenError
from polygen.importing import yamltext
from polygen.inventory import Inventory, Problem, inventory_files, load, secrets_file

SECTIONS = ("extensions", "phones", "contacts")
SECRETS_COMMENT = ("SIP passwords by extension. Keep this file out of git and private (chmod 600):\n"
                   "polygen reads it beside the inventory, never as part of it.")


@dataclass
class Origin:
    """Where an entry came from: a file and line, and the column (or key) each field was read from."""

    file: str
    line: int | None
    columns: dict[str, str] = field(default_factory=dict)
    line_rows: list[int] = field(default_factory=list)  # phones: the row each of its lines came from


@dataclass
class Entry:
    section: str  # extensions | phones | contacts
    data: dict
    origin: Origin | None = None


@dataclass
class Draft:
    entries: list[Entry] = field(default_factory=list)
    site: dict | None = None
    models: dict = field(default_factory=dict)  # models: overrides, written beside the site
    secrets: dict[str, str] = field(default_factory=dict)  # extension -> SIP password
    provisioning_password: str | None = None
    admin_password: str | None = None  # the phones' own (site.admin_password), into the secrets file too
    comment: str = ""  # put above each new file
    warnings: list[Problem] = field(default_factory=list)  # found while reading the source

    def count(self, section: str) -> int:
        return sum(1 for e in self.entries if e.section == section)


@dataclass
class Written:
    files: list[tuple[Path, str]]  # each file written and what it got
    inventory: Inventory
    warnings: list[Problem]
    gitignore: Path | None = None  # when the import added the secrets file to it


@dataclass
class Existing:
    """What an inventory directory already holds, with where (``file:line``)."""

    exts: dict[str, str] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    site: str | None = None


def existing(into: Path) -> Existing:
    """Scan the inventory's files (as written; ``inventory.load`` checks them) for what is there."""
    from polygen.inventory import normalise_mac
    from polygen.yamlnodes import Map, Scalar, Seq, load_file

    found = Existing()
    if not Path(into).is_dir():
        return found
    for f in inventory_files(Path(into)):
        doc, _ = load_file(f)
        if not isinstance(doc, Map):
            continue
        if "site" in doc and found.site is None:
            found.site = f"{f}:{doc.locs['site'].line}"
        for section, key, bucket in (("extensions", "ext", found.exts), ("phones", "mac", found.macs)):
            seq = doc.get(section)
            for item in seq if isinstance(seq, Seq) else ():
                v = item.get(key) if isinstance(item, Map) else None
                if isinstance(v, Scalar) and not v.is_null:
                    name = normalise_mac(v.text) if key == "mac" else v.text
                    bucket.setdefault(name or v.text, f"{f}:{v.loc.line}")
    return found


def _what(draft: Draft, section: str) -> str:
    return _count(draft.count(section), section)


def _count(n: int, section: str) -> str:
    noun = {"extensions": "extension", "phones": "phone", "contacts": "contact"}[section]
    return f"{n} {noun}{'s' if n != 1 else ''}"


class _Layout:
    """The text of every file the import writes, and which entry is at which index of which file."""

    def __init__(self, draft: Draft, into: Path, secrets: Path | None):
        self.into = into
        self.texts: dict[Path, str] = {}
        self.what: dict[Path, str] = {}
        self.placed: dict[tuple[Path, str, int], Entry] = {}
        self.secrets = secrets_file(into, secrets)
        clash = [p for p in self._new_files(draft) if p.exists()]
        if (draft.secrets or draft.provisioning_password or draft.admin_password) and self.secrets.exists():
            clash.append(self.secrets)
        if clash:
            raise PolygenError(f"{', '.join(map(str, clash))} already exist{'s' if len(clash) == 1 else ''}: "
                               "add to that inventory with --merge, or import --into a new directory")
        if draft.site is not None:
            doc = {"site": draft.site, **({"models": draft.models} if draft.models else {})}
            self._set(into / "site.yaml", yamltext.dump(doc, draft.comment), "the site")
        for section in SECTIONS:
            entries = [e for e in draft.entries if e.section == section]
            if not entries:
                continue
            target = into / f"{section}.yaml"
            self._set(target, yamltext.dump({section: [e.data for e in entries]}, draft.comment),
                      _what(draft, section))
            for i, e in enumerate(entries):
                self.placed[(target, section, i)] = e
        if draft.secrets or draft.provisioning_password or draft.admin_password:
            self._secrets(draft)

    def _new_files(self, draft: Draft) -> list[Path]:
        names = (["site.yaml"] if draft.site else []) + [f"{s}.yaml" for s in SECTIONS if draft.count(s)]
        return [self.into / n for n in names]

    def _set(self, path: Path, text: str, what: str) -> None:
        self.texts[path] = text
        self.what[path] = what

    def _secrets(self, draft: Draft) -> None:
        path = self.secrets
        n = len(draft.secrets)
        what = ", ".join(x for x in (f"{n} password{'s' if n != 1 else ''}" if n else "",
                                     "the provisioning password" if draft.provisioning_password else "",
                                     "the phones' admin password" if draft.admin_password else "") if x)
        doc: dict = {"secrets": dict(draft.secrets)} if draft.secrets else {}
        doc |= {k: v for k, v in (("provisioning_password", draft.provisioning_password),
                                  ("admin_password", draft.admin_password)) if v}
        self._set(path, yamltext.dump(doc, SECRETS_COMMENT), what + " (mode 0600)")


_PATH_RE = re.compile(r"^(extensions|phones|contacts)\[(\d+)\]")
_FIELD_RE = re.compile(r"^(?:\.([A-Za-z_]+))?(?:\[(\d+)\])?")


def _relocate(p: Problem, layout: _Layout, tmp: Path, tmp_secrets: Path) -> Problem:
    """A problem of the temporary copy, told at the place the user can fix."""
    real = {str(tmp_secrets): str(layout.secrets), str(tmp): str(layout.into)}

    def back(text: str) -> str:
        for a, b in real.items():
            text = text.replace(a, b)
        return text

    file = Path(back(p.file))
    m = _PATH_RE.match(p.path)
    entry = layout.placed.get((file, m.group(1), int(m.group(2)))) if m else None
    p = Problem(str(file), p.line, p.path, back(p.message), p.severity)
    return _at_origin(p, entry, p.path[m.end():]) if m else p


def _at_origin(p: Problem, entry: Entry | None, rest: str) -> Problem:
    """A problem in an entry the import added, told at the row (or place) the entry came from;
    ``rest``: its path after the entry (``.lines[1]``)."""
    if entry is None or entry.origin is None:
        return p
    origin = entry.origin
    fld, index = _FIELD_RE.match(rest).groups()
    line = origin.line
    if fld == "lines" and index is not None and int(index) < len(origin.line_rows):
        line = origin.line_rows[int(index)]
    column = origin.columns.get(fld, fld) if fld else ""
    return Problem(origin.file, line, column, p.message, p.severity)


def check(draft: Draft, into: Path, *, secrets: Path | None = None,
          env: dict | None = None) -> tuple[_Layout, Inventory, list[Problem]]:
    """Lay the draft out as new files and load the inventory they make in a private copy; raise
    InventoryError with every problem (at its origin) when it has an error."""
    into = Path(into)
    layout = _Layout(draft, into, secrets)
    with tempfile.TemporaryDirectory(prefix="polygen-import-") as td:
        tmp = Path(td) / "inventory"
        tmp.mkdir(mode=0o700)
        if into.is_dir():
            for f in inventory_files(into):
                dest = tmp / f.relative_to(into)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
        for path, text in layout.texts.items():
            if path == layout.secrets:
                continue
            dest = tmp / path.relative_to(into)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
        tmp_secrets = Path(td) / "secrets.yaml"
        if layout.secrets in layout.texts:
            tmp_secrets.write_text(layout.texts[layout.secrets], encoding="utf-8")
        elif layout.secrets.is_file():
            shutil.copyfile(layout.secrets, tmp_secrets)
        tmp_secrets.touch()
        tmp_secrets.chmod(0o600)
        try:
            inv = load(tmp, tmp_secrets, env=env)
        except InventoryError as exc:
            problems = [_relocate(p, layout, tmp, tmp_secrets) for p in exc.problems]
            n = sum(1 for p in problems if p.severity == "error")
            raise InventoryError(f"{n} problem{'s' if n != 1 else ''}; nothing written", problems) from None
        warnings = [_relocate(p, layout, tmp, tmp_secrets) for p in inv.warnings]
    return layout, inv, warnings


def commit(draft: Draft, into: Path, *, secrets: Path | None = None, env: dict | None = None) -> Written:
    """Check, then write every file of the draft (each atomically: a temporary file, then rename)."""
    into = Path(into)
    layout, inv, warnings = check(draft, into, secrets=secrets, env=env)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in layout.texts.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.polygen-import"
            mode = 0o600 if path == layout.secrets else (path.stat().st_mode & 0o777 if path.exists() else 0o644)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            staged.append((tmp, path))
    except OSError:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    gitignore = _ignore_secrets(into, layout.secrets) if layout.secrets in layout.texts else None
    return Written([(p, layout.what[p]) for p in layout.texts], inv, warnings, gitignore)


def merge(draft: Draft, into: Path, *, secrets: Path | None = None, env: dict | None = None,
          dry_run: bool = False) -> Written:
    """Add the draft's extensions, phones and passwords (and its site, as a new site.yaml) to the
    inventory in ``into``: one ``edit.add_entries``, checked as a whole before anything is written
    (``dry_run``: only checked). Passwords go to the secrets file only, which ends mode 0600."""
    from polygen import edit

    into = Path(into)
    if draft.count("contacts") or draft.models or draft.provisioning_password or draft.admin_password:
        raise PolygenError("only extensions, phones and their passwords can be added to an inventory")
    given = {s: [e for e in draft.entries if e.section == s] for s in ("extensions", "phones")}
    site = into / "site.yaml"
    new_files = {site: yamltext.dump({"site": draft.site}, draft.comment)} if draft.site is not None else {}
    added = edit.add_entries(
        into, extensions=[e.data for e in given["extensions"]], phones=[e.data for e in given["phones"]],
        passwords=draft.secrets, new_files=new_files, secrets=secrets, private=True, env=env, dry_run=dry_run,
        blame=lambda p, section, i, rest: _at_origin(p, given[section][i], rest))
    if dry_run:
        return Written([], added.inventory, list(added.warnings))
    what: dict[Path, list[str]] = {site: ["the site"]} if new_files else {}
    for section, entries in given.items():  # all of a section go to one file
        if entries:
            path = next(p.file for p in added.placed if p.section == section)
            what.setdefault(path, []).append(_count(len(entries), section))
    files = [(path, ", ".join(w)) for path, w in what.items()]
    gitignore = None
    if draft.secrets:
        n, store = len(draft.secrets), secrets_file(into, secrets)
        files.append((store, f"{n} password{'s' if n != 1 else ''} (mode 0600)"))
        gitignore = _ignore_secrets(into, store)
    return Written(files, added.inventory, list(added.warnings), gitignore)


def _ignore_secrets(into: Path, secrets: Path) -> Path | None:
    """List the secrets file in the inventory's .gitignore (the inventory is its own repository,
    README "Lay out the site"), unless it already is or lies outside the inventory."""
    try:
        rel = secrets.resolve().relative_to(into.resolve()).as_posix()
    except ValueError:
        return None
    ignore = into / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if any(ln.strip().lstrip("/") in (rel, "*.yaml", "secrets.y*ml", "secrets.*") for ln in lines):
        return None
    with open(ignore, "a", encoding="utf-8") as fh:
        if lines and not ignore.read_text(encoding="utf-8").endswith("\n"):
            fh.write("\n")
        fh.write(f"# SIP passwords: never in git\n/{rel}\n")
    return ignore
