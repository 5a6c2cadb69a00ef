"""polygen.pgstore: the PostgreSQL log database, on a real server (tests/pg.py).

The behaviour both backends share is tested on both in tests/test_logstore.py; here what only
PostgreSQL has: the schema version table, several writers at once, passwords in URLs, connection
failures.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import psycopg
import pytest

import polygen.pgstore as pgstore
from polygen.errors import LogStoreError, LogStoreUnavailable
from polygen.logdb import describe_db, open_store
from polygen.logstore import MIGRATIONS as SQLITE_MIGRATIONS
from polygen.logstore import SCHEMA_VERSION, LogStore
from polygen.pgstore import PgLogStore, safe_url
from tests.daemons import free_port
from tests.pg import PASSWORD

MAC = "0004f2abcdef"


def raw(url, sql, params=()):
    """Run one statement on a connection of its own; its rows, if it has any."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def growing_log(mac: str, n: int) -> bytes:
    """The first ``n`` lines of one phone's app log; each upload re-sends the whole file."""
    return b"".join(f"{i:06d}.000|app1 |2|00|{mac} line {i}\n".encode() for i in range(1, n + 1))


# ---------------------------------------------------------------------- schema
def test_schema_created(pg_url):
    with open_store(pg_url) as store:
        assert isinstance(store, PgLogStore)
        assert store.schema_version == SCHEMA_VERSION == 2
    assert [v for (v,) in raw(pg_url, "SELECT version FROM polygen_schema ORDER BY version")] == [1, 2]
    tables = {t for (t,) in raw(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables == {"polygen_schema", "uploads", "log_lines", "upload_state", "sightings", "tail_offsets"}
    indexes = dict(raw(pg_url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"))
    assert "(mac, received_at)" in indexes["log_lines_mac_received"]
    assert "(received_at)" in indexes["log_lines_received"]
    assert "(upload_id)" in indexes["log_lines_upload"]
    assert "WHERE (level >= 4)" in indexes["log_lines_problems"]


def test_same_tables_and_columns_as_sqlite(pg_url, tmp_path):
    """Both backends have the same migrations and the same columns in the same order: the shared
    SQL (polygen.logstore.BaseLogStore) and `polygen logs` see one schema."""
    assert set(pgstore.MIGRATIONS) == set(SQLITE_MIGRATIONS) == set(range(1, SCHEMA_VERSION + 1))
    LogStore.open(tmp_path / "logs.db").close()
    PgLogStore.open(pg_url).close()
    conn = sqlite3.connect(tmp_path / "logs.db")
    try:
        for table in ("uploads", "log_lines", "upload_state", "sightings", "tail_offsets"):
            sqlite_columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            pg_columns = [c for (c,) in raw(pg_url, "SELECT column_name FROM information_schema.columns"
                                                    " WHERE table_schema = current_schema() AND table_name = %s"
                                                    " ORDER BY ordinal_position", (table,))]
            assert pg_columns == sqlite_columns, table
    finally:
        conn.close()


def test_reopen_does_not_migrate_again(pg_url):
    PgLogStore.open(pg_url).close()
    PgLogStore.open(pg_url).close()
    assert raw(pg_url, "SELECT count(*) FROM polygen_schema") == [(2,)]


def test_newer_schema_refused(pg_url):
    PgLogStore.open(pg_url).close()
    raw(pg_url, "INSERT INTO polygen_schema (version) VALUES (99)")
    with pytest.raises(LogStoreError, match=r"schema version 99 is newer than this polygen supports \(2\); "
                                            "upgrade polygen"):
        PgLogStore.open(pg_url)


def test_sidecars_starting_together_migrate_once(pg_url):
    """Several servers opening a new database at once: one migrates, the others wait and find it done."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start():
        try:
            barrier.wait()
            PgLogStore.open(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raw(pg_url, "SELECT version FROM polygen_schema ORDER BY version") == [(1,), (2,)]


def test_database_not_utf8_refused(pg_cluster):
    from psycopg import sql

    with pg_cluster.admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS polygen_latin1")
        conn.execute(sql.SQL("CREATE DATABASE polygen_latin1 OWNER {} ENCODING 'LATIN1' TEMPLATE template0")
                     .format(sql.Identifier("polygen")))
    try:
        url = pg_cluster.url(database="polygen_latin1")
        with pytest.raises(LogStoreError, match="the database's encoding is LATIN1, not UTF8: create it with "
                                                r"`createdb -E UTF8 -T template0 \.\.\.`"):
            PgLogStore.open(url)
    finally:
        with pg_cluster.admin() as conn:
            conn.execute("DROP DATABASE polygen_latin1 WITH (FORCE)")


# ---------------------------------------------------------------------- several writers
def test_two_writers_same_phones_store_every_line_once(pg_url):
    """Two servers take the same upload for the same phone at the same moment (a phone that gave
    up waiting and sent its growing log again, to the other server): every line is stored once,
    numbered as in the phone's file."""
    macs = [f"0004f2{i:06x}" for i in range(3)]
    rounds = 20
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    stored = [0, 0]

    def writer(w: int):
        try:
            with open_store(pg_url) as store:
                for r in range(1, rounds + 1):
                    for mac in macs:
                        barrier.wait()  # both stores read the append state at the same moment
                        stored[w] += store.store_upload(mac, "app", growing_log(mac, 3 * r), None, None).lines
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_store(pg_url) as store:
        for mac in macs:
            rows = store.query(mac=mac, limit=None)
            assert [r.text for r in rows] == [f"{mac} line {i}" for i in range(1, 3 * rounds + 1)]
            assert [r.line_no for r in rows] == list(range(1, 3 * rounds + 1))
        assert store.counts() == (2 * rounds * len(macs), 3 * rounds * len(macs))
    assert sum(stored) == 3 * rounds * len(macs)


def test_many_phones_two_writers_bulk(pg_url):
    """Two stores, different phones, concurrently: everything lands, COPY keeps every field."""
    def writer(first: int):
        with open_store(pg_url) as store:
            for i in range(first, 40, 2):
                mac = f"64167f{i:06x}"
                store.store_upload(mac, "boot", growing_log(mac, 200), "5.9.7.4477", "UA", received_at=float(i))

    threads = [threading.Thread(target=writer, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open_store(pg_url) as store:
        assert store.counts() == (40, 40 * 200)
        row = store.query(mac="64167f000007", limit=1)[0]
        assert (row.kind, row.line_no, row.time, row.module, row.level, row.missed, row.text, row.parsed,
                row.fw_version, row.received_at) == ("boot", 200, "000200.000", "app1", 2, 0,
                                                     "64167f000007 line 200", True, "5.9.7.4477", 7.0)


# ---------------------------------------------------------------------- URLs, passwords, failures
@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://polygen:s3cret@db1/polygen", "postgresql://polygen:***@db1/polygen"),
    ("postgresql://polygen@db1:5433/polygen", "postgresql://polygen@db1:5433/polygen"),
    ("postgres://u:p%40ss@[::1]/logs?sslmode=require", "postgres://u:***@[::1]/logs?sslmode=require"),
    ("postgresql://db1/polygen?user=u&password=s3cret", "postgresql://db1/polygen?user=u&password=***"),
    ("postgresql://polygen@db1/polygen?options=-csearch_path%3Dlogs",
     "postgresql://polygen@db1/polygen?options=-csearch_path%3Dlogs"),
])
def test_safe_url(url, shown):
    assert safe_url(url) == describe_db(url) == shown


def test_wrong_password_not_shown(pg_cluster):
    url = pg_cluster.url(password="wrong-" + PASSWORD)
    with pytest.raises(LogStoreUnavailable) as info:
        PgLogStore.open(url)
    message = str(info.value.message)
    assert message.startswith(f"cannot reach log database postgresql://polygen:***@127.0.0.1:{pg_cluster.port}/"
                              "polygen: connection failed:")
    assert 'password authentication failed for user "polygen"' in message
    assert PASSWORD not in message


def test_no_server_listening():
    port = free_port()
    with pytest.raises(LogStoreUnavailable, match=rf"^cannot reach log database postgresql://polygen@127\.0\.0\.1:"
                                                  rf"{port}/polygen: connection failed: .*Connection refused"):
        PgLogStore.open(f"postgresql://polygen@127.0.0.1:{port}/polygen")


def test_malformed_url():
    with pytest.raises(LogStoreError, match=r"^invalid log database URL postgresql://db1/polygen\?"
                                            r"colour=blue: .*colour"):
        PgLogStore.open("postgresql://db1/polygen?colour=blue")


def test_psycopg_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(LogStoreError, match=r"^PostgreSQL log databases need psycopg: pip install "
                                            r"'polygen\[pg\]' \(or psycopg\[binary\]\)$"):
        open_store("postgresql://polygen@db1/polygen")


def test_lost_connection_comes_back(pg_cluster, pg_url, monkeypatch):
    """The server ends our connection (a restart, a failover): the call that finds it gone raises
    LogStoreUnavailable and stores nothing; the next one connects again."""
    monkeypatch.setattr(pgstore, "RECONNECT_PAUSE", 0.0)
    with open_store(pg_url) as store:
        store.store_upload(MAC, "app", growing_log(MAC, 2), None, None)
        with pg_cluster.admin("polygen") as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = 'polygen' AND application_name = 'polygen'")
        with pytest.raises(LogStoreUnavailable, match="^cannot reach log database postgresql://polygen:\\*\\*\\*@"):
            store.store_upload(MAC, "app", growing_log(MAC, 4), None, None)
        assert store.ping() is True  # connected again
        # the upload sent again stores exactly the two new lines
        assert store.store_upload(MAC, "app", growing_log(MAC, 4), None, None).lines == 2
        assert [r.line_no for r in store.query(limit=None)] == [1, 2, 3, 4]


def test_reader_gives_up_on_a_locked_table(pg_url, monkeypatch):
    """The health check's reader waits for a lock no longer than its statement timeout: a table
    locked by a migration or an admin makes the check fail, not hang (then it answers again)."""
    monkeypatch.setattr(pgstore, "READER_SETTINGS", (pgstore.READER_SETTINGS[0], "SET statement_timeout = 200"))
    PgLogStore.open(pg_url).close()
    reader = PgLogStore.open_reader(pg_url)
    try:
        with psycopg.connect(pg_url) as admin, admin.transaction():
            admin.execute("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE")
            assert reader.ping() is False
        assert reader.ping() is True
        assert reader._fetch("SHOW default_transaction_read_only") == [("on",)]
    finally:
        reader.close()


def test_version_1_database_is_migrated_keeping_its_data(pg_url):
    """A database made by the previous polygen (schema 1) is brought to 2 by the first sidecar."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE polygen_schema (version INTEGER PRIMARY KEY,"
                     " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for statement in pgstore.MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO polygen_schema (version) VALUES (1)")
        conn.execute("INSERT INTO uploads (mac, kind, received_at, bytes, lines) VALUES ('0004f2abcdef', 'app', 5, 9, 1)")
    with open_store(pg_url) as store:
        assert store.schema_version == 2
        assert [u[1] for u in store.uploads()] == ["0004f2abcdef"]
        assert store.sightings() == []
    assert raw(pg_url, "SELECT extensions FROM uploads") == [(None,)]
