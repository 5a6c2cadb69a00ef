"""The phones' override files: what a user changed on the phone or in its web interface.

A phone PUTs ``<mac>-phone.cfg`` (changed on its menus) and ``<mac>-web.cfg`` (changed in its web
interface) into ``OVERRIDES_DIRECTORY`` and GETs them back at every boot, where they beat every
``CONFIG_FILES`` entry (docs/polycom.md §1.6). polygen's bootstraps name ``DIRECTORY``
(``overrides``), so these names never collide with the generated ``<mac>-phone.cfg`` at the root
(DESIGN.md, "Decisions").

The sidecar keeps the uploads in a state directory of its own, outside ``out/``
(``OverrideStore``: ``--overrides-dir``, by default ``polygen-overrides`` beside the log
database), one file per phone and kind, named only from a validated MAC and kind, written
atomically, mode 0600. What a phone gets back depends on ``site.overrides``, which the build
writes into ``SERVE_FILE`` of each generation: ``keep`` serves the phone's last upload (404 while
there is none), ``discard`` serves ``EMPTY`` (the phone's local changes last until its next boot).
``parse`` is the one validator of an upload's body; ``polygen overrides`` lists what is stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import xml.parsers.expat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from polygen.errors import PolygenError
from polygen.write import SERVE_FILE, _fsync_dir  # SERVE_FILE in each generation: {"version": 1, "overrides": "keep"}

DIRECTORY = "overrides"  # OVERRIDES_DIRECTORY in the bootstraps
KINDS = ("phone", "web")  # <mac>-phone.cfg: the phone's menus; <mac>-web.cfg: its web interface
POLICIES = ("keep", "discard")
DEFAULT_POLICY = "keep"  # as on Polycom's own servers: a user's change survives a reboot
DEFAULT_DIRNAME = "polygen-overrides"
MAX_BYTES = 64 * 1024  # an override file lists the settings a user changed: a few hundred bytes
MAX_PARAMS = 2000
_MAX_NAME = 255

NAME_RE = re.compile(r"([0-9a-f]{12})-(phone|web)\.cfg", re.ASCII)
PATH_RE = re.compile(rf"/{DIRECTORY}/{NAME_RE.pattern}", re.ASCII)
# A Polycom parameter name: dotted words (reg.1.auth.password, up.backlight.idleIntensity).
_PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)
# What XML 1.0 allows but a value shown on a terminal or written back to a phone should not carry.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# What the phone gets back under `discard` (and what `polygen overrides clear` writes): an override
# file that sets nothing, the form Polycom servers use to clear a phone's overrides (docs/polycom.md §9).
EMPTY = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         b"<PHONE_CONFIG>\n  <OVERRIDES/>\n</PHONE_CONFIG>\n")


class OverrideError(PolygenError):
    """An override upload that is not an override file (the sidecar answers 400)."""


def file_name(mac: str, kind: str) -> str:
    name = f"{mac}-{kind}.cfg"
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"not an override file name: {name!r}")
    return name


def parse(body: bytes) -> list[tuple[str, str]]:
    """The parameters of an override file, in order, or ``OverrideError`` saying what is wrong.

    The body must be well-formed XML whose root is ``<PHONE_CONFIG>``; every attribute of every
    element below it is a parameter (element names mean nothing to a phone, docs/polycom.md §3.1).
    No document type declaration is accepted (so no entities: nothing expands), names must look
    like Polycom parameters and values may not hold control characters.
    """
    if len(body) > MAX_BYTES:
        raise OverrideError(f"an override file is at most {MAX_BYTES} bytes")
    params: list[tuple[str, str]] = []
    depth = 0

    def start(tag: str, attrs: list[str]) -> None:
        nonlocal depth
        if depth == 0 and tag != "PHONE_CONFIG":
            raise OverrideError(f"the root element is <{tag[:40]}>, not <PHONE_CONFIG>")
        if not _PARAM_RE.fullmatch(tag):  # no namespace prefix: nothing a browser would run
            raise OverrideError(f"<{tag[:40]}> is not an element of an override file")
        depth += 1
        if depth == 1:
            if attrs:
                raise OverrideError("<PHONE_CONFIG> carries no parameters itself; they go in <OVERRIDES .../>")
            return
        for name, value in zip(attrs[::2], attrs[1::2]):
            if len(name) > _MAX_NAME or not _PARAM_RE.fullmatch(name) or name.lower().startswith("xml"):
                raise OverrideError(f"{name[:60]!r} is not a parameter name")
            if _CONTROL_RE.search(value):
                raise OverrideError(f"the value of {name} holds control characters")
            params.append((name, value))
            if len(params) > MAX_PARAMS:
                raise OverrideError(f"an override file sets at most {MAX_PARAMS} parameters")

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1

    def no_doctype(*_args) -> None:
        raise OverrideError("document type declarations are not accepted")

    parser = xml.parsers.expat.ParserCreate()
    parser.ordered_attributes = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = no_doctype
    parser.EntityDeclHandler = no_doctype
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as exc:
        raise OverrideError(f"not well-formed XML ({xml.parsers.expat.errors.messages[exc.code]}, "
                            f"line {exc.lineno})") from None
    return params


def render(params: list[tuple[str, str]] | dict[str, str]) -> bytes:
    """An override file setting ``params``, as a phone writes one."""
    from xml.sax.saxutils import quoteattr

    pairs = params.items() if isinstance(params, dict) else params
    attrs = "".join(f"\n    {name}={quoteattr(value)}" for name, value in pairs)
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            + f"<PHONE_CONFIG>\n  <OVERRIDES{attrs}/>\n</PHONE_CONFIG>\n".encode())


def answer(policy: str, stored: bytes | None) -> bytes | None:
    """What a phone the build knows gets for its override file: None is a 404."""
    return EMPTY if policy == "discard" else stored


# ------------------------------------------------------------------ the policy of a generation
def policy_text(policy: str) -> str:
    """``SERVE_FILE``'s content, written by the build."""
    return json.dumps({"version": 1, "overrides": policy}, indent=2, sort_keys=True) + "\n"


def read_policy(gen: Path | None) -> str:
    """``site.overrides`` of the generation ``gen``: keep when it says nothing (an older build)."""
    if gen is None:
        return DEFAULT_POLICY
    try:
        data = json.loads((gen / SERVE_FILE).read_bytes())
    except (OSError, ValueError):
        return DEFAULT_POLICY
    policy = data.get("overrides") if isinstance(data, dict) else None
    return policy if policy in POLICIES else DEFAULT_POLICY


def default_dir(db: Path | str) -> Path:
    """``polygen-overrides`` beside a SQLite log database, else in the working directory."""
    from polygen.logdb import is_postgres_url

    if isinstance(db, str) and is_postgres_url(db):
        return Path(DEFAULT_DIRNAME)
    return Path(db).parent / DEFAULT_DIRNAME


# ------------------------------------------------------------------ the store
@dataclass(frozen=True)
class Stored:
    mac: str
    kind: str
    received: float  # the file's mtime
    params: list[tuple[str, str]]
    error: str | None = None  # the file no longer parses (edited by hand)


class OverrideStore:
    """One directory of override files, ``<mac>-<kind>.cfg``. Paths are made from a MAC and a kind
    that ``file_name`` checked, never from what a client sent; writes are atomic (a temporary
    file in the same directory, fsync, rename, fsync of the directory), files 0600, the directory
    0700 (an override file may hold a password a user typed into the web interface)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, mac: str, kind: str) -> Path:
        return self.root / file_name(mac, kind)

    def prepare(self) -> None:
        """Create the directory (0700) and remove temporary files a crash left behind."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.root.is_dir():
                raise FileExistsError
            for leftover in self.root.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)
        except FileExistsError:
            raise PolygenError(f"the overrides directory {self.root} is not a directory; "
                               "give another with --overrides-dir") from None
        except OSError as exc:
            raise PolygenError(f"cannot use the overrides directory {self.root}: {exc.strerror or exc}; "
                               "give another with --overrides-dir") from None

    def read(self, mac: str, kind: str) -> bytes | None:
        try:
            return self.path(mac, kind).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, mac: str, kind: str, body: bytes) -> None:
        target = self.path(mac, kind)
        tmp = self.root / f".{target.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                owner = self.root.stat()
                if os.geteuid() == 0 and owner.st_uid != 0:
                    # `polygen overrides clear` run as root: the file stays the sidecar's to read
                    os.fchown(fh.fileno(), owner.st_uid, owner.st_gid)
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(self.root)

    def entries(self, macs: list[str] | None = None) -> list[Stored]:
        """What is stored, by MAC then kind (phone before web, the order a phone reads them)."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            m = NAME_RE.fullmatch(p.name)
            if m is None or (macs is not None and m[1] not in macs) or not p.is_file():
                continue
            body = p.read_bytes()
            try:
                params, error = parse(body), None
            except OverrideError as exc:
                params, error = [], str(exc)
            found.append(Stored(m[1], m[2], p.stat().st_mtime, params, error))
        return sorted(found, key=lambda s: (s.mac, KINDS.index(s.kind)))


def format_time(ts: float) -> str:
    """``2026-11-29T10:58:21+00:00``, in local time, as ``polygen logs`` shows times."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


_WHERE = {"phone": "changed on the phone", "web": "changed in its web interface"}


def format_entries(entries: list[Stored], fmt: str = "text") -> str:
    """``polygen overrides``: each stored file and the parameters it sets, credentials masked and
    control characters visible (a file edited by hand is shown, never obeyed)."""
    from polygen.safetext import MASK, is_credential, json_dumps, visible

    def shown(name: str, value: str) -> str:
        return MASK if is_credential(name) and value else value

    if fmt == "json":
        return json_dumps([{"mac": e.mac, "kind": e.kind, "file": file_name(e.mac, e.kind),
                            "received": format_time(e.received), "error": e.error,
                            "params": {n: shown(n, v) for n, v in e.params}} for e in entries], indent=2) + "\n"
    out = []
    for e in entries:
        out.append(f"{file_name(e.mac, e.kind)}  {format_time(e.received)}  {_WHERE[e.kind]}")
        if e.error:
            out.append(f"  not an override file: {visible(e.error)}")
        elif not e.params:
            out.append("  (sets nothing)")
        out += [f"  {visible(n)} = {json_dumps(shown(n, v))}" for n, v in e.params]
    return "".join(line + "\n" for line in out)
