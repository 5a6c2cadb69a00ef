"""The log database on PostgreSQL (``--db postgresql://user@host/db``), shared by several sidecars.

The same tables, append mode and queries as the SQLite store (``polygen.logstore``: read its
docstring first); the shared parts live there. What differs:

* **Schema version**: the table ``polygen_schema`` (one row per applied migration) instead of
  SQLite's ``user_version``. Migrations run in one transaction under an advisory lock, so sidecars
  that start together migrate once.
* **Several writers.** Each sidecar has its own connection. ``store_upload`` takes a transaction
  advisory lock on (MAC, kind) before it reads the append state, so two sidecars taking uploads
  for the same phone at once store them one after the other: the second reads what the first
  committed (READ COMMITTED takes a snapshot per statement), and appended lines are stored once.
* **Bulk insert**: an upload's lines go in with one ``COPY``.
* **Health checks** ask on a connection of their own (``open_reader``), read-only and with a
  statement timeout, so they never wait behind the sidecar's writers.
* **Outages.** A lost or refused connection raises ``LogStoreUnavailable`` (the sidecar answers
  503 and the phone tries again); the next call connects again. A commit whose answer was lost may
  have happened: the upload sent again then finds its lines in the append state and stores
  nothing twice. Only a committed upload is acknowledged.

psycopg (``pip install 'polygen[pg]'``) is imported only when a PostgreSQL URL is used.
"""

from __future__ import annotations

import contextlib
import logging
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from polygen.errors import LogStoreError, LogStoreUnavailable
from polygen.logstore import BUSY_TIMEOUT_MS, LINE_COLUMNS, SCHEMA_VERSION, BaseLogStore

__all__ = ["MIGRATIONS", "PgLogStore", "safe_url"]

log = logging.getLogger("polygen.pgstore")

SCHEMA_TABLE = "polygen_schema"
# libpq settings: give up connecting after 10 s, and notice a server that vanished without closing
# the connection (power cut, cable) within about 30 s instead of the kernel's many minutes.
CONNECT_OPTIONS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "application_name": "polygen",
}

RECONNECT_PAUSE = 2.0  # seconds after a failed connection attempt before the next one
# The health check's connection only reads, and its query waits for a lock no longer than SQLite's
# would, so a stuck check cannot hold the reader thread.
READER_SETTINGS = ("SET default_transaction_read_only = on", f"SET statement_timeout = {BUSY_TIMEOUT_MS}")

# The SQLite schema (polygen.logstore.MIGRATIONS) in PostgreSQL's types, version for version.
# Never edit a released entry: add the next version, here and there.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE uploads (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            mac TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('boot', 'app')),
            fw_version TEXT,
            user_agent TEXT,
            received_at DOUBLE PRECISION NOT NULL,
            bytes INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            skipped_prefix_bytes INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX uploads_mac_received ON uploads (mac, received_at)",
        "CREATE INDEX uploads_received ON uploads (received_at)",
        """CREATE TABLE log_lines (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            upload_id BIGINT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
            mac TEXT NOT NULL,
            kind TEXT NOT NULL,
            line_no INTEGER NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            time TEXT,
            module TEXT,
            level INTEGER,
            missed BIGINT,
            text TEXT NOT NULL,
            parsed BOOLEAN NOT NULL
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
        """CREATE TABLE sightings (
            mac TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('config', 'directory', 'upload', 'boot')),
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL,
            requests BIGINT NOT NULL,
            address TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            status INTEGER NOT NULL,
            ua_model TEXT,
            firmware TEXT,
            user_agent TEXT,
            ua_seen DOUBLE PRECISION,
            PRIMARY KEY (mac, kind)
        )""",
        "CREATE INDEX sightings_last_seen ON sightings (last_seen)",
        "ALTER TABLE uploads ADD COLUMN extensions TEXT",
        "CREATE INDEX log_lines_problems ON log_lines (mac, received_at) WHERE level >= 4",
        """CREATE TABLE tail_offsets (
            source TEXT PRIMARY KEY,
            inode TEXT NOT NULL,
            position BIGINT NOT NULL
        )""",
    ),
}


def safe_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for messages."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, host = netloc.rsplit("@", 1)
            if ":" in user:
                netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)],
                          safe="/*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "postgresql://***"  # unparseable: show nothing of it


def _reason(exc: BaseException) -> str:
    """libpq's message on one line (it spreads host, port and hint over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class PgLogStore(BaseLogStore):
    """An open PostgreSQL log database. Use ``PgLogStore.open(url)`` (or ``logdb.open_store``)."""

    _PH = "%s"
    _LIKE = "ILIKE"
    _CONTAINS = "strpos({}, {}) > 0"
    _LEAST, _GREATEST = "LEAST", "GREATEST"

    def __init__(self, url: str, read_only: bool = False):
        self.url = url
        self.name = safe_url(url)
        self._conn = None  # psycopg.Connection, connected on first use and again after a loss
        self._failed: tuple[float, str] | None = None  # (monotonic time, message) of a failed connect
        self._settings = READER_SETTINGS if read_only else ()  # run on each new connection

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, url: str) -> PgLogStore:
        """Connect to ``url`` and bring the schema up to date (creating it on first use)."""
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise LogStoreError(
                "PostgreSQL log databases need psycopg: pip install 'polygen[pg]' (or psycopg[binary])"
            ) from None
        store = cls(url)
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_reader(cls, url: str) -> PgLogStore:
        """A connection of its own that only reads (the sidecar's health check): READER_SETTINGS;
        connected at its first query, never migrating."""
        return cls(url, read_only=True)

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _connection(self):
        """The open connection, or a new one. After a failed attempt, calls within
        RECONNECT_PAUSE fail at once: while the server is unreachable, each upload would otherwise
        hold the one writer thread for up to connect_timeout."""
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._failed is not None and _time.monotonic() < self._failed[0] + RECONNECT_PAUSE:
            raise LogStoreUnavailable(self._failed[1])
        try:
            conn = psycopg.connect(self.url, autocommit=True, **CONNECT_OPTIONS)
            try:
                for statement in self._settings:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
        except psycopg.OperationalError as exc:
            self._failed = (_time.monotonic(), f"cannot reach log database {self.name}: {_reason(exc)}")
            raise LogStoreUnavailable(self._failed[1]) from exc
        except psycopg.Error as exc:  # a malformed URL: no use trying again
            raise LogStoreError(f"invalid log database URL {self.name}: {_reason(exc)}") from exc
        self._failed = None
        self._conn = conn
        return conn

    @contextlib.contextmanager
    def _session(self) -> Iterator:
        """The connection (made again if it was lost); connection failures -> LogStoreUnavailable,
        other database errors -> LogStoreError."""
        import psycopg

        conn = self._connection()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:
                self.close()
            raise LogStoreUnavailable(f"cannot reach log database {self.name}: {_reason(exc)}") from exc
        except psycopg.Error as exc:
            raise LogStoreError(f"log database {self.name}: {_reason(exc)}") from exc

    def _migrate(self) -> None:
        with self._session() as conn, conn.transaction():
            encoding = conn.execute("SHOW server_encoding").fetchone()[0]
            if encoding != "UTF8":
                raise LogStoreError(f"{self.name}: the database's encoding is {encoding}, not UTF8: "
                                    "create it with `createdb -E UTF8 -T template0 ...`")
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('polygen.schema', 0))")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
                         "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            version = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LogStoreError(
                    f"{self.name}: schema version {version} is newer than this polygen supports "
                    f"({SCHEMA_VERSION}); upgrade polygen"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (%s)", (target,))
                log.info("%s: log database schema at version %d", self.name, target)

    # ------------------------------------------------------------------ introspection
    @property
    def schema_version(self) -> int:
        return self._fetch(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")[0][0]

    def ping(self) -> bool:
        """True when the database answers a trivial query (health checks); connects again if need be."""
        try:
            self._fetch("SELECT count(*) FROM uploads WHERE false")
        except LogStoreError:
            return False
        return True

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._session() as conn:
            return conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: Sequence = ()) -> int:
        with self._session() as conn:
            return conn.execute(sql, params).rowcount

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _upload_transaction(self, mac: str, kind: str) -> Iterator:
        with self._session() as conn, conn.transaction():
            # Held to the end of the transaction: another sidecar storing for this phone waits
            # here, then reads the append state this transaction committed.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                         (f"polygen.upload:{mac}:{kind}",))
            yield conn

    @staticmethod
    def _insert_lines(conn, rows: Iterable[tuple]) -> None:
        with conn.cursor().copy(f"COPY log_lines ({LINE_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def _batch(self) -> Iterator:
        with self._session() as conn, conn.transaction():
            yield conn

    @staticmethod
    def _executemany(conn, sql: str, rows: Iterable[Sequence]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(sql, rows)
