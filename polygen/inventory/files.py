"""Each file's own checks (``_check_file`` -> ``_FileResult``), run on every core for a large
inventory and kept in a per-file cache: nothing here looks at another file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from polygen import cache as _cache
from polygen.errors import InventoryError
from polygen.inventory.fields import (
    _NAME_BYTES,
    _NUMBER_RE,
    CONTACT_KEYS,
    EXT_KEYS,
    EXT_RE,
    KEY_KINDS,
    PHONE_KEYS,
    POLYCOM_OUIS,
    SPEED_DIAL_KEYS,
    TOP_KEYS,
    _Ctx,
    normalise_mac,
)
from polygen.inventory.model import Contact, _rules_year
from polygen.inventory.secrets import SECRETS_FILENAMES, secret_problem
from polygen.tzrules import UnknownZone, rules_for, suggest_zone
from polygen.yamlnodes import Map, Scalar, Seq, load_file


def inventory_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InventoryError(f"inventory directory '{directory}' does not exist; create it or pass -i DIR")
    files = [p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(directory).parts)
             and not (p.parent == directory and p.name in SECRETS_FILENAMES)]
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


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
    sources = sorted(here.glob("*.py")) + [here.parent / n for n in ("yamlnodes.py", "catalog.py", "tzrules.py")]
    for f in sources:
        st = f.stat()
        h.update(f"{f.relative_to(here.parent)}:{st.st_size}:{st.st_mtime_ns}".encode())
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
    Cache entries are pickles of plain records kept by polygen.cache (they hold inline passwords),
    named by a digest of the code, the file's name and its bytes.
    """
    if cache is None:
        return _check_many([(f, str(f)) for f in files])
    import hashlib

    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    code = _code_digest()
    results: list[_FileResult | None] = []
    misses: list[tuple[int, Path, str, Path | None, bytes]] = []
    used: set[str] = set()
    for i, f in enumerate(files):
        name = str(f)
        try:
            data = f.read_bytes()
        except OSError:
            results.append(None)
            misses.append((i, f, name, None, b""))  # _check_file reports the error itself
            continue
        key = hashlib.blake2b(code + name.encode() + b"\0" + data, digest_size=20).hexdigest()
        entry = cache / f"{key}.pickle"
        used.add(entry.name)
        result = _cache.read(entry, key.encode())
        if not isinstance(result, _FileResult):
            result = None
            misses.append((i, f, name, entry, key.encode()))
        results.append(result)
    for (i, _, _, entry, key), result in zip(misses, _check_many([(f, n) for _, f, n, _, _ in misses])):
        results[i] = result
        if entry is not None:
            _cache.write(entry, key, result)
    for old in cache.iterdir():
        if old.name not in used:
            old.unlink(missing_ok=True)
    return results


def _check_ext(ctx: _Ctx, m: Map, path: str) -> _ExtRec | None:
    ctx.keys(m, path, EXT_KEYS, ("ext", "first_name"))
    ext = ctx.text(m, "ext", path)
    if ext is None:
        return None
    if not EXT_RE.fullmatch(ext):
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
