"""The database of the log files phones upload: SQLite here, PostgreSQL in ``polygen.pgstore``.

``polygen.logdb.open_store(db)`` opens either: a path is a SQLite file, a ``postgresql://`` URL a PostgreSQL
database that several sidecars can share. ``BaseLogStore`` is what both offer; the reads and the
append-mode arithmetic (``plan_upload``) are written once, here, for both.

SQLite: one file, WAL journal, schema versioned with ``PRAGMA user_version`` (migrations keyed by version).

**Not thread-safe, one writer.** A ``LogStore`` owns one ``sqlite3`` connection, opened with the
default ``check_same_thread=True``: it must be opened, used and closed on one thread. The sidecar
runs it on its single writer thread (``polygen.sidecar.store``); other processes (``polygen logs``)
may read concurrently thanks to WAL, and ``busy_timeout`` covers short write overlaps such as a
``polygen logs prune`` while the sidecar runs.

**Append mode.** Phones upload their log files piece by piece, and we cannot tell whether a PUT
carries only the new lines or the whole growing file. ``upload_state`` remembers, per MAC and file
kind, the length and SHA-256 of the previous body. When a new body starts with exactly that body,
only the part after it is stored and line numbers continue; otherwise the whole body is stored and
numbered from 1. Either way nothing is duplicated or lost; a body identical to the previous one
stores no lines. ``line_no`` is therefore the line's number in the file as the phone sent it. (If
the previous body ended in the middle of a line, the rest of that line arrives as a line of its
own: split, but neither lost nor duplicated.) Blank lines are not stored, but keep their numbers.
An upload cut at a line limit (``max_lines``) stores the lines that fit and one marker row, and
records only the part it stored as its append state, so the rest is stored when the phone sends
its file again. A NUL character is stored as U+FFFD (PostgreSQL text cannot hold it), as invalid
UTF-8 is.

Longer than 600 lines: the SQL both backends share (uploads, the append mode, sightings and
problems, pruning) is written once in ``BaseLogStore``, beside the SQLite backend and its migrations.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polygen.errors import LogStoreError
from polygen.logparse import count_lines, parse_log_line, text_lines
from polygen.sightings import COLUMNS as SIGHTING_COLUMNS
from polygen.sightings import Sighting

__all__ = [
    "CUT_MODULE",
    "KINDS",
    "SCHEMA_VERSION",
    "BaseLogStore",
    "LogStore",
    "Row",
    "StoredUpload",
    "UploadPlan",
    "plan_upload",
]

log = logging.getLogger("polygen.logstore")

KINDS = ("boot", "app")
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 5000
DB_MODE = 0o600  # the phones' logs are the polygen user's alone; SQLite gives -wal/-shm the same mode
PRUNE_BATCH = 5000
CUT_MODULE = "polygen"  # the module of the marker row where an upload was cut


def cut_marker(line_no: int, cut_bytes: int, max_lines: int | None) -> str:
    """The text of the row stored where an upload went over its line limit."""
    return (f"[polygen] lines {line_no} and on ({cut_bytes} bytes) not stored: this upload went over its "
            f"limit of {max_lines} lines; they are stored when the phone sends them again")


# version -> statements that bring the schema from version-1 to version. Never edit a released
# entry: add the next version instead.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE uploads (
            id INTEGER PRIMARY KEY,
            mac TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('boot', 'app')),
            fw_version TEXT,
            user_agent TEXT,
            received_at REAL NOT NULL,
            bytes INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            skipped_prefix_bytes INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX uploads_mac_received ON uploads (mac, received_at)",
        "CREATE INDEX uploads_received ON uploads (received_at)",
        """CREATE TABLE log_lines (
            id INTEGER PRIMARY KEY,
            upload_id INTEGER NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
            mac TEXT NOT NULL,
            kind TEXT NOT NULL,
            line_no INTEGER NOT NULL,
            received_at REAL NOT NULL,
            time TEXT,
            module TEXT,
            level INTEGER,
            missed INTEGER,
            text TEXT NOT NULL,
            parsed INTEGER NOT NULL
        )""",
        "CREATE INDEX log_lines_mac_received ON log_lines (mac, received_at)",
        "CREATE INDEX log_lines_received ON log_lines (received_at)",
        "CREATE INDEX log_lines_upload ON log_lines (upload_id)",
        """CREATE TABLE upload_state (
            mac TEXT NOT NULL,
            kind TEXT NOT NULL,
            last_len INTEGER NOT NULL,
            last_sha256 TEXT NOT NULL,
            last_lines INTEGER NOT NULL,
            PRIMARY KEY (mac, kind)
        )""",
    ),
    2: (
        # what the servers saw of each phone (polygen.sightings): one row per phone and kind
        """CREATE TABLE sightings (
            mac TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('config', 'directory', 'upload', 'boot')),
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            requests INTEGER NOT NULL,
            address TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            status INTEGER NOT NULL,
            ua_model TEXT,
            firmware TEXT,
            user_agent TEXT,
            ua_seen REAL,
            PRIMARY KEY (mac, kind)
        )""",
        "CREATE INDEX sightings_last_seen ON sightings (last_seen)",
        # the extensions the phone carried when it uploaded (" 1005 1003 "), for `logs --ext`
        "ALTER TABLE uploads ADD COLUMN extensions TEXT",
        # error-level lines (event class 4 minor error .. 6 fatal), for `polygen status`
        "CREATE INDEX log_lines_problems ON log_lines (mac, received_at) WHERE level >= 4",
        # how far an nginx access log has been read (polygen.accesslog), per server and file
        """CREATE TABLE tail_offsets (
            source TEXT PRIMARY KEY,
            inode TEXT NOT NULL,
            position INTEGER NOT NULL
        )""",
    ),
}


@dataclass(frozen=True, slots=True)
class StoredUpload:
    upload_id: int
    lines: int  # lines stored by this upload
    skipped_bytes: int  # leading bytes already stored by the previous upload (append mode)
    cut_line: int | None = None  # the first line not stored (over max_lines), or None
    cut_bytes: int = 0  # bytes from that line on, not stored


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    upload_id: int
    mac: str
    kind: str
    line_no: int
    received_at: float
    time: str | None
    module: str | None
    level: int | None
    missed: int | None
    text: str
    parsed: bool
    fw_version: str | None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """What storing one upload writes, given the append state it found (see the module docstring)."""

    skipped: int  # leading bytes already stored by the previous upload
    # the phone's lines to store: (line_no, time, module, level, missed, text, parsed)
    lines: list[tuple] = field(repr=False)
    state: tuple[int, str, int]  # the new append state: (last_len, last_sha256, last_lines)
    cut_line: int | None = None  # the first line not stored (over max_lines), or None
    cut_bytes: int = 0  # bytes from that line on, not stored
    max_lines: int | None = None  # the limit it was cut at

    def rows(self) -> Iterator[tuple]:
        """Every row to insert: the phone's lines, then the marker row if the upload was cut."""
        yield from self.lines
        if self.cut_line is not None:
            yield (self.cut_line, None, CUT_MODULE, None, None,
                   cut_marker(self.cut_line, self.cut_bytes, self.max_lines), False)


LINE_COLUMNS = "upload_id, mac, kind, line_no, received_at, time, module, level, missed, text, parsed"


def _no_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: both backends store it as U+FFFD, like invalid UTF-8."""
    return None if text is None else text.replace("\x00", "\ufffd")


def plan_upload(prev: Sequence | None, body: bytes, max_lines: int | None = None) -> UploadPlan:
    """The lines of ``body`` to store and the append state after it; ``prev`` is the stored
    ``(last_len, last_sha256, last_lines)`` for this MAC and kind, or None.

    Blank lines are left out (their numbers are kept). With ``max_lines``, the lines after the
    first ``max_lines`` are cut: the plan says from which line and how many bytes, and its append
    state covers only what comes before the cut, so the phone's next upload of its growing file
    brings the rest.
    """
    if max_lines is not None and max_lines < 0:
        raise ValueError("max_lines must be >= 0")
    skipped, first_line_no = 0, 1
    if prev is not None:
        last_len, last_sha, last_lines = prev
        if len(body) >= last_len and hashlib.sha256(body[:last_len]).hexdigest() == last_sha:
            skipped, first_line_no = last_len, last_lines + 1
    new_part = body[skipped:]
    lines: list[tuple] = []
    cut_line, kept = None, len(new_part)  # kept: bytes of new_part before the cut
    for line_no, start, _, text in text_lines(new_part, first_line_no):
        if max_lines is not None and len(lines) >= max_lines:
            cut_line, kept = line_no, start
            break
        p = parse_log_line(text)
        lines.append((line_no, p.time, p.module, p.level, p.missed, _no_nul(p.text), p.parsed))
    stored = body[:skipped + kept]
    state = (len(stored), hashlib.sha256(stored).hexdigest(), first_line_no - 1 + count_lines(new_part[:kept]))
    return UploadPlan(skipped, lines, state, cut_line, len(new_part) - kept, max_lines)


class BaseLogStore:
    """What every log database offers; ``open_store`` returns one.

    A backend provides ``open``, ``open_reader``, ``close``, ``schema_version``, ``ping`` and the
    two primitives the shared methods below run on: ``_fetch(sql, params)`` (rows of a query) and
    ``_write(sql, params)`` (one statement in its own transaction, returning its row count), with
    SQL written for the driver's parameter placeholder ``_PH``. One store is one connection, used
    on one thread.
    """

    name: str  # the database as shown to people: a path, or a URL without its password
    _PH = "?"  # the driver's parameter placeholder
    _LIKE = "LIKE"  # case-insensitive (ASCII at least) substring match
    _CONTAINS = "instr({}, {}) > 0"  # exact substring match: (text, part)
    _LEAST, _GREATEST = "min", "max"  # the smaller / larger of two values

    @classmethod
    def open(cls, db) -> BaseLogStore:
        """Open (creating on first use) the database ``db`` and bring its schema up to date."""
        raise NotImplementedError

    @classmethod
    def open_reader(cls, db) -> BaseLogStore:
        """A connection to the existing database ``db`` that only reads, for health checks."""
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    def _write(self, sql: str, params: Sequence = ()) -> int:
        raise NotImplementedError

    def _after_prune(self) -> None:
        """Housekeeping after a prune (the backend's own)."""

    def _upload_transaction(self, mac: str, kind: str) -> contextlib.AbstractContextManager:
        """A transaction for storing one upload (yielding a connection with ``execute``), in
        which no other writer stores for the same MAC and kind."""
        raise NotImplementedError

    @staticmethod
    def _insert_lines(conn, rows: Iterable[tuple]) -> None:
        """Insert ``rows`` (``LINE_COLUMNS``) into log_lines in bulk."""
        raise NotImplementedError

    def _batch(self) -> contextlib.AbstractContextManager:
        """One transaction (yielding a connection with ``execute``) for a batch of writes."""
        raise NotImplementedError

    @staticmethod
    def _executemany(conn, sql: str, rows: Iterable[Sequence]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def store_upload(
        self,
        mac: str,
        kind: str,
        body: bytes,
        fw_version: str | None,
        user_agent: str | None,
        received_at: float | None = None,
        max_lines: int | None = None,
        extensions: Sequence[str] | None = None,
    ) -> StoredUpload:
        """Store one uploaded log file in one transaction (see the module docstring for append mode).

        ``extensions`` are the lines the served build gives the phone as it uploads (None: the
        build does not know it); ``query(ext=...)`` finds its lines by them after the extension
        moved to another phone.

        Blank lines are not stored. With ``max_lines``, at most that many lines are stored; if more
        follow, one marker row says from which line on nothing was stored, and the append state
        ends before that line, so when the phone sends its file again (it re-sends the whole
        growing file) the rest is stored then, as far as the limits allow (``plan_upload``).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if received_at is None:
            received_at = _time.time()
        body = bytes(body)
        p = self._PH
        with self._upload_transaction(mac, kind) as conn:
            prev = conn.execute(
                f"SELECT last_len, last_sha256, last_lines FROM upload_state WHERE mac = {p} AND kind = {p}",
                (mac, kind),
            ).fetchone()
            plan = plan_upload(prev, body, max_lines)
            upload_id = conn.execute(
                "INSERT INTO uploads (mac, kind, fw_version, user_agent, received_at, bytes, lines,"
                f" skipped_prefix_bytes, extensions) VALUES ({', '.join([p] * 9)}) RETURNING id",
                (mac, kind, _no_nul(fw_version), _no_nul(user_agent), received_at, len(body),
                 len(plan.lines), plan.skipped, _ext_list(extensions)),
            ).fetchone()[0]
            self._insert_lines(conn, ((upload_id, mac, kind, n, received_at, *rest) for n, *rest in plan.rows()))
            conn.execute(
                "INSERT INTO upload_state (mac, kind, last_len, last_sha256, last_lines)"
                f" VALUES ({', '.join([p] * 5)}) ON CONFLICT (mac, kind) DO UPDATE SET"
                " last_len = excluded.last_len, last_sha256 = excluded.last_sha256,"
                " last_lines = excluded.last_lines",
                (mac, kind, *plan.state),
            )
        return StoredUpload(upload_id=upload_id, lines=len(plan.lines), skipped_bytes=plan.skipped,
                            cut_line=plan.cut_line, cut_bytes=plan.cut_bytes)

    def counts(self) -> tuple[int, int]:
        """(uploads, log lines) stored."""
        ((uploads, lines),) = self._fetch(
            "SELECT (SELECT count(*) FROM uploads), (SELECT count(*) FROM log_lines)")
        return uploads, lines

    def prune(self, older_than_seconds: float, now: float | None = None) -> int:
        """Delete uploads and lines received more than ``older_than_seconds`` ago; return rows deleted.

        Deletes in batches (one short transaction each) so a running sidecar is never blocked for long.
        """
        if older_than_seconds < 0:
            raise ValueError("older_than_seconds must be >= 0")
        cutoff = (_time.time() if now is None else now) - older_than_seconds
        # a phone's sightings go with its logs: unknown MACs (a scanner's too) do not pile up
        deleted = self._write(f"DELETE FROM sightings WHERE last_seen < {self._PH}", (cutoff,))
        for table in ("log_lines", "uploads"):
            while True:
                n = self._write(
                    f"DELETE FROM {table} WHERE id IN "  # table: a constant from the tuple above
                    f"(SELECT id FROM {table} WHERE received_at < {self._PH} LIMIT {self._PH})",
                    (cutoff, PRUNE_BATCH),
                )
                deleted += n
                if n < PRUNE_BATCH:
                    break
        self._after_prune()
        return deleted

    def query(
        self,
        mac: str | Sequence[str] | None = None,
        kind: str | None = None,
        since: float | None = None,
        level: int | None = None,
        grep: str | None = None,
        limit: int | None = 100,
        ext: str | Sequence[str] | None = None,
        ext_macs: Sequence[str] = (),
    ) -> list[Row]:
        """The newest ``limit`` matching lines, returned oldest first.

        ``mac`` is one MAC or a list; ``ext`` one extension or a list: the lines of uploads made
        while the phone carried it (``store_upload(extensions=...)``), and, for uploads stored
        without that record, the lines of ``ext_macs``. Given both, a line matching either is
        kept; empty lists match nothing. ``level`` keeps lines whose level is at least that
        (unparsed lines have no level and are left out); ``grep`` is a case-insensitive
        substring (SQLite folds ASCII letters only, PostgreSQL all of Unicode).
        """
        p = self._PH
        where: list[str] = []
        params: list = []
        if mac is not None or ext is not None:
            who: list[str] = []
            macs = [] if mac is None else [mac] if isinstance(mac, str) else list(mac)
            if macs:
                who.append(f"l.mac IN ({', '.join([p] * len(macs))})")
                params.extend(m.lower() for m in macs)
            exts = [] if ext is None else [ext] if isinstance(ext, str) else list(ext)
            for e in exts:
                who.append(self._CONTAINS.format("u.extensions", p))
                params.append(f" {e} ")
            if exts and ext_macs:
                who.append(f"(u.extensions IS NULL AND l.mac IN ({', '.join([p] * len(ext_macs))}))")
                params.extend(ext_macs)
            if not who:
                return []
            where.append("(" + " OR ".join(who) + ")")
        if kind is not None:
            where.append(f"l.kind = {p}")
            params.append(kind)
        if since is not None:
            where.append(f"l.received_at >= {p}")
            params.append(since)
        if level is not None:
            where.append(f"l.level >= {p}")
            params.append(level)
        if grep:
            where.append(f"l.text {self._LIKE} {p} ESCAPE '\\'")
            params.append("%" + _like_escape(grep) + "%")
        sql = (
            "SELECT l.id, l.upload_id, l.mac, l.kind, l.line_no, l.received_at, l.time, l.module,"
            " l.level, l.missed, l.text, l.parsed, u.fw_version"
            " FROM log_lines AS l JOIN uploads AS u ON u.id = l.upload_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY l.received_at DESC, l.id DESC"
        if limit is not None:
            sql += f" LIMIT {p}"
            params.append(int(limit))
        rows = [Row(*r[:11], bool(r[11]), r[12]) for r in self._fetch(sql, params)]
        rows.reverse()
        return rows

    def uploads(self, mac: str | None = None) -> list[tuple]:
        """(id, mac, kind, fw_version, received_at, bytes, lines, skipped_prefix_bytes), oldest first."""
        sql = ("SELECT id, mac, kind, fw_version, received_at, bytes, lines, skipped_prefix_bytes"
               " FROM uploads")
        params: Iterable = ()
        if mac is not None:
            sql += f" WHERE mac = {self._PH}"
            params = (mac,)
        return [tuple(r) for r in self._fetch(sql + " ORDER BY received_at, id", params)]

    # ------------------------------------------------------------------ what the servers saw
    def record_sightings(self, rows: Sequence[Sighting], offsets: Sequence[tuple[str, str, int]] = ()) -> None:
        """Add coalesced sightings (``polygen.sightings``) to their rows, and record how far the
        access logs they came from were read (``offsets``: ``(source, inode, position)``), in
        one transaction: a crash before the commit reads those log lines again, and counts them
        once. Rows are written in (MAC, kind) order, so writers on several servers lock them in
        the same order."""
        p = self._PH
        cols = ", ".join(SIGHTING_COLUMNS)
        newer = "excluded.last_seen >= sightings.last_seen"
        with_ua = "excluded.ua_model IS NOT NULL AND (sightings.ua_model IS NULL OR excluded.ua_seen >= sightings.ua_seen)"
        sql = (
            f"INSERT INTO sightings ({cols}) VALUES ({', '.join([p] * len(SIGHTING_COLUMNS))})"
            " ON CONFLICT (mac, kind) DO UPDATE SET"
            f" first_seen = {self._LEAST}(sightings.first_seen, excluded.first_seen),"
            f" last_seen = {self._GREATEST}(sightings.last_seen, excluded.last_seen),"
            " requests = sightings.requests + excluded.requests,"
            + ",".join(f" {c} = CASE WHEN {newer} THEN excluded.{c} ELSE sightings.{c} END"
                       for c in ("address", "method", "path", "status")) + ","
            + ",".join(f" {c} = CASE WHEN {with_ua} THEN excluded.{c} ELSE sightings.{c} END"
                       for c in ("ua_model", "firmware", "user_agent", "ua_seen"))
        )
        ordered = sorted(rows, key=lambda r: (r.mac, r.kind))
        with self._batch() as conn:
            if ordered:
                self._executemany(conn, sql, [tuple(_no_nul(v) if isinstance(v, str) else v for v in r.as_tuple())
                                              for r in ordered])
            for source, inode, position in offsets:
                conn.execute(
                    f"INSERT INTO tail_offsets (source, inode, position) VALUES ({p}, {p}, {p})"
                    " ON CONFLICT (source) DO UPDATE SET inode = excluded.inode, position = excluded.position",
                    (source, inode, position),
                )

    def sightings(self, mac: str | None = None) -> list[Sighting]:
        """Every sighting row (of one phone), by MAC and kind."""
        sql = f"SELECT {', '.join(SIGHTING_COLUMNS)} FROM sightings"
        params: Sequence = ()
        if mac is not None:
            sql += f" WHERE mac = {self._PH}"
            params = (mac,)
        return [Sighting(*r) for r in self._fetch(sql + " ORDER BY mac, kind", params)]

    def has_extension(self, ext: str) -> bool:
        """Did a phone carrying ``ext`` upload anything (that is still stored)?"""
        return bool(self._fetch(f"SELECT 1 FROM uploads WHERE {self._CONTAINS.format('extensions', self._PH)}"
                                " LIMIT 1", (f" {ext} ",)))

    def seen_macs(self) -> set[str]:
        """The MACs of every phone with a sighting."""
        return {mac for (mac,) in self._fetch("SELECT DISTINCT mac FROM sightings")}

    def reported_model(self, mac: str) -> str | None:
        """The model token the phone's newest User-Agent reported (``VVX_410``), if it was seen."""
        rows = self._fetch(f"SELECT ua_model FROM sightings WHERE mac = {self._PH} AND ua_model IS NOT NULL"
                           " ORDER BY last_seen DESC LIMIT 1", (mac,))
        return rows[0][0] if rows else None

    def problems(self, since: float) -> dict[str, Row]:
        """Each phone's newest problem line received since ``since``: an error-level line (event
        class 4, minor error, or above) or a registration failure at any level."""
        p = self._PH
        newest = self._fetch(
            f"SELECT max(id) FROM log_lines WHERE received_at >= {p}"
            f" AND (level >= 4 OR text {self._LIKE} {p}) GROUP BY mac", (since, "%regist%fail%"))
        ids = [i for (i,) in newest]
        found: dict[str, Row] = {}
        for start in range(0, len(ids), 500):  # a bounded IN list per query
            chunk = ids[start:start + 500]
            for r in self._fetch(
                    "SELECT l.id, l.upload_id, l.mac, l.kind, l.line_no, l.received_at, l.time, l.module,"
                    " l.level, l.missed, l.text, l.parsed, u.fw_version"
                    " FROM log_lines AS l JOIN uploads AS u ON u.id = l.upload_id"
                    f" WHERE l.id IN ({', '.join([p] * len(chunk))})", chunk):
                found[r[2]] = Row(*r[:11], bool(r[11]), r[12])
        return found

    def tail_offset(self, source: str) -> tuple[str, int] | None:
        """``(inode, position)`` an access log ``source`` was read up to, or None."""
        rows = self._fetch(f"SELECT inode, position FROM tail_offsets WHERE source = {self._PH}", (source,))
        return (rows[0][0], int(rows[0][1])) if rows else None


def _create_private(path: Path) -> None:
    """Create a missing database file as DB_MODE, whatever the umask (SQLite would make it 0644)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, DB_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, DB_MODE)
    finally:
        os.close(fd)


class LogStore(BaseLogStore):
    """An open SQLite log database. Use ``LogStore.open(path)`` (or ``open_store``); close it, or use
    it as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path
        self.name = str(path)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, path: str | Path) -> LogStore:
        """Open (creating on first use) the database at ``path`` and bring its schema up to date."""
        path = Path(path)
        try:
            _create_private(path)
            # isolation_level=None: no implicit transactions, we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else exc
            raise LogStoreError(f"cannot open log database {path}: {reason}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # journal_mode must change outside any transaction (sqlite-utils refuses otherwise).
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal_mode is %s, not WAL", path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise LogStoreError(f"{path}: not a usable log database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def open_reader(cls, path: str | Path) -> LogStore:
        """A read-only connection to the existing database at ``path``, for health checks: with
        WAL it reads while the writer writes, and it never migrates or creates anything."""
        path = Path(path)
        try:
            conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot open log database {path} to read: {exc}") from exc
        return cls(conn, path)

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LogStoreError(
                f"{self.path}: schema version {version} is newer than this polygen supports "
                f"({SCHEMA_VERSION}); upgrade polygen"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction():
                for statement in MIGRATIONS[target]:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {int(target)}")
            log.info("%s: log database schema at version %d", self.path, target)

    def close(self) -> None:
        self._conn.close()

    def _transaction(self):
        return _Transaction(self._conn)

    # ------------------------------------------------------------------ introspection
    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @property
    def journal_mode(self) -> str:
        return self._conn.execute("PRAGMA journal_mode").fetchone()[0]

    def ping(self) -> bool:
        """True when the database answers a trivial query (health checks)."""
        try:
            self._conn.execute("SELECT count(*) FROM uploads WHERE 0").fetchone()
        except sqlite3.Error:
            return False
        return True

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: Sequence = ()) -> int:
        with self._transaction():
            return self._conn.execute(sql, params).rowcount

    def _after_prune(self) -> None:
        self._conn.execute("PRAGMA optimize")

    @contextlib.contextmanager
    def _upload_transaction(self, mac: str, kind: str) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the database's one write lock: uploads are stored one at a time.
        with self._transaction():
            yield self._conn

    @staticmethod
    def _insert_lines(conn: sqlite3.Connection, rows: Iterable[tuple]) -> None:
        conn.executemany(f"INSERT INTO log_lines ({LINE_COLUMNS}) VALUES ({', '.join('?' * 11)})", rows)

    def _batch(self):
        return self._transaction()

    @staticmethod
    def _executemany(conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence]) -> None:
        conn.executemany(sql, rows)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rollback on any exception (like sqlite-utils ``atomic()``)."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def __enter__(self):
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")
        return False


def _ext_list(extensions: Sequence[str] | None) -> str | None:
    """Extensions as stored in uploads.extensions: `` 1005 1003 `` (each between spaces, which
    no extension contains), so a substring test for `` 1003 `` matches exactly one."""
    if extensions is None:
        return None
    return " " + " ".join(extensions) + " "


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
