"""``read_csv(path) -> Draft``: a spreadsheet of phones and extensions as inventory entries.

One row per line of a phone (or per extension without a phone): several rows with the same MAC
give that phone several lines, in row order. Columns are found by their header, in the common
spellings (``MAC Address``, ``First Name``, ``extension``, ``password``, …); ``--map`` names the
others. The delimiter (comma, semicolon, tab, bar) is sniffed from the file.

Every bad row is reported with its line number in the file and its column as the header writes
it (``phones.csv:17: MAC Address: …``), all of them at once; the caller writes nothing then.
Passwords go into ``Draft.secrets``, never into an entry.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from polygen.catalog import Catalog
from polygen.errors import InventoryError, PolygenError
from polygen.importing.commit import Draft, Entry, Origin
from polygen.inventory import EXT_RE, Problem, normalise_mac

FIELDS = ("mac", "model", "ext", "first_name", "last_name", "name", "display_name", "secret", "mailbox",
          "label", "directory", "shared")
IGNORE = "ignore"
EXT_FIELDS = ("first_name", "last_name", "display_name", "secret", "mailbox", "label", "directory", "shared")
_FLAGS = {"directory": True, "shared": False}  # yes/no fields, and what a missing one means
# header spellings, compared without case, spaces, '_', '-' and '.'
SPELLINGS = {
    "mac": "mac", "macaddress": "mac", "macaddr": "mac", "hardwareaddress": "mac",
    "model": "model", "phonemodel": "model", "devicemodel": "model",
    "ext": "ext", "extension": "ext", "exten": "ext", "extensionnumber": "ext",
    "firstname": "first_name", "first": "first_name", "givenname": "first_name",
    "lastname": "last_name", "last": "last_name", "surname": "last_name", "familyname": "last_name",
    "name": "name", "fullname": "name",
    "displayname": "display_name", "callerid": "display_name",
    "secret": "secret", "password": "secret", "sippassword": "secret", "pass": "secret",
    "mailbox": "mailbox", "voicemail": "mailbox", "voicemailbox": "mailbox",
    "label": "label", "linelabel": "label",
    "directory": "directory", "listed": "directory", "indirectory": "directory",
    "shared": "shared", "sharedline": "shared",
}
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\ufffe\uffff]")  # a line break too: a directory name is one line
_YES = {"1", "y", "yes", "true", "x"}
_NO = {"0", "n", "no", "false"}
MAX_NAME_BYTES = 40


def header_key(text: str) -> str:
    return re.sub(r"[\s_\-.]", "", text).lower()


def parse_map(items) -> dict[str, str]:
    """``["Dept=ignore", "Phone=ext"]`` -> {"dept": "ignore", "phone": "ext"}, keyed by header_key."""
    out = {}
    for item in items:
        column, sep, fld = item.rpartition("=")
        fld = fld.strip().lower()
        if not sep or not column.strip():
            raise PolygenError(f"--map '{item}': write it as COLUMN=FIELD, e.g. --map 'Phone Number=ext'")
        if fld not in FIELDS and fld != IGNORE:
            raise PolygenError(f"--map '{item}': unknown field '{fld}'; fields: {', '.join(FIELDS)}, or {IGNORE}")
        out[header_key(column)] = fld
    return out


@dataclass
class _Row:
    line: int
    values: dict[str, str]  # field -> text, stripped; only the non-empty ones


@dataclass
class _Ext:
    row: int
    data: dict
    fields_row: dict = field(default_factory=dict)  # field -> the row it was first given on


class _Reader:
    def __init__(self, path: Path, display: str, mapping: dict[str, str], catalog: Catalog):
        self.path = path
        self.display = display
        self.mapping = mapping
        self.catalog = catalog
        self.problems: list[Problem] = []
        self.column: dict[str, str] = {}  # field -> header as written

    def error(self, line: int, fld: str | None, message: str) -> None:
        col = self.column.get(fld, fld) if fld else ""
        self.problems.append(Problem(self.display, line, col or "", message))

    def warn(self, line: int, col: str, message: str) -> None:
        self.problems.append(Problem(self.display, line, col, message, "warning"))

    # ------------------------------------------------------------ the file
    def rows(self) -> list[_Row]:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            line = self.path.read_bytes()[: exc.start].count(b"\n") + 1
            raise InventoryError("not UTF-8", [Problem(self.display, line, "", "not UTF-8 text; save the "
                                                                               "spreadsheet as CSV UTF-8")]) from None
        if not text.strip():
            raise InventoryError("empty", [Problem(self.display, 1, "", "the file is empty; it needs a header "
                                                                        "row and one row per phone line")])
        reader = csv.reader(text.splitlines(keepends=True), dialect=_sniff(text))
        try:
            header = next(reader)
        except csv.Error as exc:
            raise InventoryError("bad CSV", [Problem(self.display, 1, "", f"not CSV: {exc}")]) from None
        fields = self._header(header)
        out = []
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.error(start, None, f"not CSV: {exc}")
                break
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
                self.error(line, None, f"{len(cells)} cells, but the header has {len(header)} columns")
            values = {}
            for fld, cell in zip(fields, cells):
                if fld and fld != IGNORE and cell.strip():
                    values[fld] = cell.strip()
            out.append(_Row(line, values))
        return out

    def _header(self, header: list[str]) -> list[str | None]:
        fields: list[str | None] = []
        unknown = []
        used_map = set()
        for col in header:
            k = header_key(col)
            fld = self.mapping.get(k) or SPELLINGS.get(k)
            if k in self.mapping:
                used_map.add(k)
            if fld is None:
                unknown.append(col)
            elif fld != IGNORE and fld in self.column:
                self.error(1, None, f"columns '{self.column[fld]}' and '{col}' are both {fld}; map one of them "
                                    f"with --map '{col}=FIELD' (or '{col}={IGNORE}')")
                fld = IGNORE
            elif fld != IGNORE:
                self.column[fld] = col
            fields.append(fld)
        for k in self.mapping:
            if k not in used_map:
                self.error(1, None, f"--map names a column '{k}' that the header does not have "
                                    f"(columns: {', '.join(header)})")
        for col in unknown:
            self.warn(1, col, f"column not imported; to import it, map it with --map '{col}=FIELD' "
                              f"(fields: {', '.join(FIELDS)}), or silence this with --map '{col}={IGNORE}'")
        if "ext" not in self.column and "mac" not in self.column:
            self.error(1, None, f"no extension or MAC column (columns: {', '.join(header)}); name yours with "
                                "--map 'COLUMN=ext'")
        if "name" in self.column and ("first_name" in self.column or "last_name" in self.column):
            other = self.column.get("first_name") or self.column.get("last_name")
            self.error(1, None, f"both '{self.column['name']}' and '{other}' give the name; keep one of them "
                                f"or --map '{self.column['name']}={IGNORE}'")
        return fields

    # ------------------------------------------------------------ one row
    def check_row(self, r: _Row) -> None:
        v = r.values
        for fld, text in v.items():
            if _CONTROL_RE.search(text):
                self.error(r.line, fld, "contains control characters the phones cannot show")
        if "mac" in v:
            mac = normalise_mac(v["mac"])
            if mac is None:
                self.error(r.line, "mac", f"'{v['mac']}' is not a MAC address; write 12 hex digits, "
                                          "e.g. 00:04:f2:12:34:56")
            elif mac == "000000000000":
                self.error(r.line, "mac", "000000000000 is reserved for the default files")
                mac = None
            v["mac"] = mac
        if "model" in v:
            m = self.catalog.find(v["model"])
            if m is None:
                s = self.catalog.suggest(v["model"])
                self.error(r.line, "model", f"unknown model '{v['model']}'" + (f" (did you mean {s}?)" if s else "")
                           + "; use a catalog name such as VVX410, or add it under models: first")
            v["model"] = m.key if m else None
        if v.get("mac") and "model" not in v:
            self.error(r.line, "model" if "model" in self.column else None,
                       "no model for this phone; every phone needs one (a model column, e.g. VVX410)")
        if "model" in v and "mac" not in v:
            self.error(r.line, "mac" if "mac" in self.column else None, "a model without a MAC address")
        if "ext" in v and not EXT_RE.fullmatch(v["ext"]):
            self.error(r.line, "ext", f"'{v['ext']}' is not a valid extension (letters, digits, '.', '+', '-'; "
                                      "at most 64)")
            del v["ext"]
        if "ext" not in v and "mac" not in v and "model" not in v and any(f in v for f in EXT_FIELDS + ("name",)):
            self.error(r.line, "ext" if "ext" in self.column else None,
                       "no extension on this row; every row needs an extension or a phone")
        if "name" in v:
            first, _, last = v.pop("name").rpartition(" ")
            v["first_name"], v["last_name"] = (first, last) if first else (last, "")
            for k in ("first_name", "last_name"):
                if not v[k]:
                    del v[k]
                else:
                    self.column.setdefault(k, self.column["name"])
        for k in ("first_name", "last_name"):
            if k in v and len(v[k].encode()) > MAX_NAME_BYTES:
                self.error(r.line, k, f"{len(v[k].encode())} bytes in UTF-8, but at most {MAX_NAME_BYTES} fit "
                                      "in the phone directory; shorten it")
        for flag in _FLAGS:
            if flag in v:
                d = v[flag].lower()
                if d not in _YES | _NO:
                    self.error(r.line, flag, f"'{v[flag]}': write yes or no")
                    del v[flag]
                else:
                    v[flag] = d in _YES


def _sniff(text: str):
    """Excel's CSV with the delimiter the file uses (only the delimiter is sniffed: the sniffer's
    guesses about quoting are less reliable than Excel's rules)."""
    sample = "".join(text.splitlines(keepends=True)[:20])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = text.splitlines()[0]
        counts = {d: first.count(d) for d in ",;\t|"}
        best = max(counts, key=counts.get)
        delimiter = best if counts[best] else ","

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter
    return Dialect


def read_csv(path: Path, *, mapping: dict[str, str] | None = None, display: str | None = None,
             existing_exts: dict[str, str] | None = None, existing_macs: dict[str, str] | None = None,
             catalog: Catalog | None = None) -> Draft:
    """The CSV at ``path`` as a Draft; InventoryError listing every bad row (warnings included).

    ``existing_exts``/``existing_macs`` (value: where it is) are those of the inventory the rows
    are added to: a row may put an existing extension on a new phone, but not define it again.
    """
    path = Path(path)
    display = display or str(path)
    catalog = catalog or Catalog()
    existing_exts = existing_exts or {}
    existing_macs = existing_macs or {}
    rd = _Reader(path, display, mapping or {}, catalog)
    rows = rd.rows()
    for r in rows:
        rd.check_row(r)
    exts: dict[str, _Ext] = {}
    phones: dict[str, dict] = {}
    origins: dict[str, Origin] = {}
    for r in rows:
        v = r.values
        ext, mac = v.get("ext"), v.get("mac")
        given = {k: v[k] for k in EXT_FIELDS if k in v}
        if ext and ext in existing_exts:
            if given:
                rd.error(r.line, next(iter(given)), f"extension {ext} is already in the inventory "
                                                     f"({existing_exts[ext]}); leave its other columns empty "
                                                     "to put it on a phone")
        elif ext:
            _add_ext(rd, exts, ext, given, r.line)
        if not mac:
            continue
        if mac in existing_macs:
            rd.error(r.line, "mac", f"phone {mac} is already in the inventory ({existing_macs[mac]})")
            continue
        phone = phones.get(mac)
        if phone is None:
            phone = phones[mac] = {"mac": ":".join(mac[i:i + 2] for i in range(0, 12, 2)),
                                   "model": v.get("model"), "lines": []}
            origins[mac] = Origin(display, r.line, {"mac": rd.column.get("mac", "mac"),
                                                    "model": rd.column.get("model", "model"),
                                                    "lines": rd.column.get("ext", "ext")})
        elif v.get("model") and phone["model"] and v["model"] != phone["model"]:
            rd.error(r.line, "model", f"phone {mac} is a {phone['model']} on line {origins[mac].line}")
        if ext:
            if ext in phone["lines"]:
                rd.error(r.line, "ext", f"extension {ext} is on phone {mac} twice (line "
                                        f"{origins[mac].line_rows[phone['lines'].index(ext)]})")
                continue
            phone["lines"].append(ext)
            origins[mac].line_rows.append(r.line)
            model = catalog.models.get(phone["model"] or "")
            if model and len(phone["lines"]) > model.lines:
                rd.error(r.line, "ext", f"line {len(phone['lines'])} of phone {mac}, but the {model.name} "
                                        f"supports {model.lines}")
    for ext, e in exts.items():
        if "first_name" not in e.data:
            rd.error(e.row, "first_name" if "first_name" in rd.column or "name" not in rd.column else "name",
                     f"no name for extension {ext}; every extension needs a first name")
    errors = [p for p in rd.problems if p.severity == "error"]
    if errors:
        raise InventoryError(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in {display}; "
                             "nothing written", sorted(rd.problems, key=lambda p: (p.line or 0)))
    draft = Draft(comment=f"Imported from {path.name} by polygen import csv.")
    for ext, e in exts.items():
        data = dict(e.data)
        secret = data.pop("secret", None)
        if secret is not None:
            draft.secrets[ext] = secret
        entry = {"ext": ext, **{k: data[k] for k in EXT_FIELDS if k in data and data[k] != _FLAGS.get(k)}}
        cols = {k: rd.column.get(k, k) for k in ("ext",) + EXT_FIELDS}
        draft.entries.append(Entry("extensions", entry, Origin(display, e.row, cols)))
    for mac, phone in phones.items():
        draft.entries.append(Entry("phones", phone, origins[mac]))
    draft.warnings = [p for p in rd.problems if p.severity == "warning"]
    return draft


def _add_ext(rd: _Reader, exts: dict[str, _Ext], ext: str, given: dict, line: int) -> None:
    """The first row of an extension defines it; a later row may repeat a value, not change it."""
    e = exts.get(ext)
    if e is None:
        exts[ext] = _Ext(line, dict(given), {k: line for k in given})
        return
    for k, val in given.items():
        if k not in e.data:
            e.data[k] = val
            e.fields_row[k] = line
        elif e.data[k] != val:
            shown = "(hidden)" if k == "secret" else f"'{e.data[k]}'"
            rd.error(line, k, f"extension {ext} has {k} {shown} on line {e.fields_row[k]}; "
                              "rows of the same extension must agree")


SITE_OPTIONS = ("name", "provisioning_url", "sip_server", "timezone")


def import_csv(path: Path, into: Path, *, merge: bool = False, mapping: dict[str, str] | None = None,
               secrets: Path | None = None, site: dict[str, str] | None = None, env: dict | None = None,
               display: str | None = None, dry_run: bool = False):
    """Read the CSV, check the inventory it makes and write it (``dry_run``: only check): new
    files, or with ``merge`` the entries added to ``into``'s files as ``phone add`` and ``ext add``
    add theirs (``commit.merge``).

    ``site`` (name, provisioning_url, sip_server, timezone) makes a ``site.yaml`` for an
    inventory that has none. Returns (Draft, commit.Written, whose files are empty on a dry run);
    raises InventoryError with every problem.
    """
    from polygen.importing.commit import Written, check, commit, existing
    from polygen.importing.commit import merge as add
    from polygen.inventory import inventory_files

    into = Path(into)
    have = existing(into)
    site = {k: v for k, v in (site or {}).items() if v}
    if not merge and (have.exts or have.macs):
        where = next(iter({**have.exts, **have.macs}.values()))
        raise PolygenError(f"{into} already has phones or extensions ({where}): add these to it with --merge, "
                           "or import --into a new directory")
    if site and have.site:
        raise PolygenError(f"{into} already has a site ({have.site}); drop the site options")
    if not site and not have.site:
        raise PolygenError(f"{into} has no site: give --site-name, --provisioning-url, --sip-server and "
                           f"--timezone, or write {into}/site.yaml first (see README, The inventory)")
    missing = [k for k in SITE_OPTIONS if site and k not in site]
    if missing:
        raise PolygenError("a new site needs " + ", ".join("--" + k.replace("_", "-") for k in missing)
                           .replace("--name", "--site-name"))
    draft = read_csv(path, mapping=mapping, display=display, existing_exts=have.exts, existing_macs=have.macs)
    if site:
        draft.site = {k: site[k] for k in SITE_OPTIONS}
    if merge and into.is_dir() and inventory_files(into):
        written = add(draft, into, secrets=secrets, env=env, dry_run=dry_run)
    elif dry_run:
        _, inv, warnings = check(draft, into, secrets=secrets, env=env)
        written = Written([], inv, warnings)
    else:
        written = commit(draft, into, secrets=secrets, env=env)
    written.warnings[:0] = draft.warnings
    return draft, written
