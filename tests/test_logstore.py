"""polygen.logstore: schema, WAL, append-mode uploads, transactions, queries, pruning.

The behaviour tests run on both backends: the ``db`` fixture is a SQLite path or the URL of a new
PostgreSQL database (tests/pg.py). Backend details: the SQLite ones here, PostgreSQL's in
tests/test_pgstore.py."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3

import pytest

import polygen.logstore as logstore
from polygen.errors import LogStoreError
from polygen.logdb import is_postgres_url, open_reader, open_store
from polygen.logstore import SCHEMA_VERSION, LogStore, StoredUpload
from polygen.pgstore import PgLogStore

MAC = "0004f2abcdef"
MAC2 = "64167f000001"
UA = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"


def is_open(store) -> bool:
    if isinstance(store, PgLogStore):
        return store._conn is not None
    try:
        store._conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_leaked_connections(monkeypatch):
    """Fail a test that leaves a store open (Python 3.11 does not warn about it by itself)."""
    opened: list = []
    for cls in (LogStore, PgLogStore):
        real_open = cls.open.__func__

        def tracking_open(cls, db, real_open=real_open):
            store = real_open(cls, db)
            opened.append(store)
            return store

        monkeypatch.setattr(cls, "open", classmethod(tracking_open))
    yield
    leaked = [store.name for store in opened if is_open(store)]
    for store in opened:
        store.close()
    assert not leaked, f"log store left open: {leaked}"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "logs.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, db_path):
    """The database of a behaviour test: a SQLite path, or a new PostgreSQL database's URL."""
    return db_path if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def raw(db, sql, params=()):
    """Read with an independent connection (closed before returning)."""
    if is_postgres_url(db):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute(sql, params).fetchall()
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def lines(n, start=1):
    return b"".join(f"0000{i:02d}.000|app1 |2|00|line {i}\n".encode() for i in range(start, start + n))


def texts(store, **kw):
    return [r.text for r in store.query(limit=None, **kw)]


# ---------------------------------------------------------------------- schema
def test_schema_created(db_path):
    with LogStore.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        assert store.journal_mode == "wal"
    tables = {r[0] for r in raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"uploads", "log_lines", "upload_state", "sightings", "tail_offsets"} <= tables
    indexes = {r[0]: r[1] for r in raw(db_path, "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}
    assert "(mac, received_at)" in indexes["log_lines_mac_received"]
    assert "(received_at)" in indexes["log_lines_received"]
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert "WHERE level >= 4" in indexes["log_lines_problems"]
    assert raw(db_path, "PRAGMA user_version") == [(2,)]


def test_reopen_keeps_data(db):
    with open_store(db) as s:
        s.store_upload(MAC, "app", lines(3), "5.9.7.4477", UA, received_at=1000.0)
    with open_store(db) as s:
        assert s.schema_version == 2
        assert [r.text for r in s.query()] == ["line 1", "line 2", "line 3"]
        assert s.query()[0].fw_version == "5.9.7.4477"


def test_newer_schema_refused(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LogStoreError, match="schema version 99 is newer"):
        LogStore.open(db_path)


def test_not_a_database(db_path):
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LogStoreError, match="not a usable log database"):
        LogStore.open(db_path)


# ---------------------------------------------------------------------- the health check's reader
def test_reader_reads_while_a_write_is_open_and_never_writes(db, store):
    """open_reader: the health check's connection answers while an upload's transaction is open
    on the writer, and cannot change anything."""
    reader = open_reader(db)
    try:
        with store._upload_transaction(MAC, "app") as conn:  # a writer in the middle of an upload
            conn.execute("INSERT INTO upload_state VALUES ('x', 'app', 0, '', 0)")
            assert reader.ping() is True
            assert reader.counts() == (0, 0)
        with pytest.raises((LogStoreError, sqlite3.OperationalError), match="read-?only"):
            reader._write("DELETE FROM upload_state")
        assert raw(db, "SELECT count(*) FROM upload_state") == [(1,)]
    finally:
        reader.close()


def test_sqlite_reader_creates_nothing(db_path):
    with pytest.raises(LogStoreError, match=f"^cannot open log database {db_path} to read: "):
        open_reader(db_path)
    assert not db_path.exists()


# ---------------------------------------------------------------------- storing
def test_store_fields(store):
    body = (b"011511.006|so   |2|00|soCoreAudioTermChg: chassis -> idle\r\n"
            b"free text line\n"
            b"1101103000|sip  |4|03|a | b\n")
    assert store.store_upload(MAC, "boot", body, "5.9.7.47435", UA, received_at=50.0) == StoredUpload(1, 3, 0)
    rows = store.query()
    assert [(r.line_no, r.time, r.module, r.level, r.missed, r.text, r.parsed) for r in rows] == [
        (1, "011511.006", "so", 2, 0, "soCoreAudioTermChg: chassis -> idle", True),
        (2, None, None, None, None, "free text line", False),
        (3, "1101103000", "sip", 4, 3, "a | b", True),
    ]
    assert {(r.mac, r.kind, r.received_at, r.upload_id) for r in rows} == {(MAC, "boot", 50.0, 1)}
    assert store.uploads() == [(1, MAC, "boot", "5.9.7.47435", 50.0, len(body), 3, 0)]


def test_invalid_utf8_stored_with_replacement(store):
    store.store_upload(MAC, "app", b"bad \xff\xfe bytes\n\xc3\n", None, None)
    assert texts(store) == ["bad \ufffd\ufffd bytes", "\ufffd"]


def test_nul_and_huge_numbers_stored(store):
    """A NUL (PostgreSQL text cannot hold it) becomes U+FFFD; a "missed" count too big for a 64-bit
    integer leaves the line unparsed, kept whole, instead of failing the upload."""
    huge = "1101103000|sip  |4|" + "9" * 30 + "|too many"
    r = store.store_upload(MAC, "app", f"a\x00b\n{huge}\n".encode(), "5.9\x00", "UA\x00", received_at=1.0)
    assert r.lines == 2
    rows = store.query()
    assert [(x.text, x.parsed, x.missed) for x in rows] == [("a\ufffdb", False, None), (huge, False, None)]
    assert rows[0].fw_version == "5.9\ufffd"


def test_empty_body(store):
    assert store.store_upload(MAC, "app", b"", None, None).lines == 0
    assert store.counts() == (1, 0)


def test_bad_kind(store):
    with pytest.raises(ValueError):
        store.store_upload(MAC, "phone", b"x\n", None, None)
    assert store.counts() == (0, 0)


def test_append_whole_growing_file(store):
    """The phone re-sends the whole file each time: only the new tail is stored."""
    body1 = lines(3)
    body2 = body1 + lines(2, start=4)
    assert store.store_upload(MAC, "app", body1, None, UA, received_at=1.0) == StoredUpload(1, 3, 0)
    assert store.store_upload(MAC, "app", body2, None, UA, received_at=2.0) == StoredUpload(2, 2, len(body1))
    rows = store.query(limit=None)
    assert [r.text for r in rows] == [f"line {i}" for i in range(1, 6)]
    assert [r.line_no for r in rows] == [1, 2, 3, 4, 5]
    assert store.uploads()[1][-1] == len(body1)  # skipped_prefix_bytes


def test_append_pieces(store):
    """The phone sends only the new lines each time: every piece is stored whole."""
    for i, start in enumerate((1, 4, 6)):
        assert store.store_upload(MAC, "app", lines(2 if i else 3, start), None, UA, received_at=i).skipped_bytes == 0
    assert texts(store) == [f"line {i}" for i in (1, 2, 3, 4, 5, 6, 7)]


def test_identical_body_stores_nothing(store):
    store.store_upload(MAC, "app", lines(3), None, UA, received_at=1.0)
    assert store.store_upload(MAC, "app", lines(3), None, UA, received_at=2.0) == StoredUpload(2, 0, len(lines(3)))
    assert len(texts(store)) == 3


def test_append_state_is_per_mac_and_kind(store):
    store.store_upload(MAC, "app", lines(3), None, UA, received_at=1.0)
    # Same bytes but another kind or another phone: stored in full.
    assert store.store_upload(MAC, "boot", lines(3), None, UA, received_at=2.0).lines == 3
    assert store.store_upload(MAC2, "app", lines(3), None, UA, received_at=3.0).lines == 3


def test_restarted_file_stored_whole(store):
    store.store_upload(MAC, "app", lines(5), None, UA, received_at=1.0)
    # After a reboot the file starts again and is shorter / different: all of it is new.
    r = store.store_upload(MAC, "app", lines(2, start=10), None, UA, received_at=2.0)
    assert (r.lines, r.skipped_bytes) == (2, 0)
    assert [x.line_no for x in store.query(since=2.0)] == [1, 2]


def test_append_survives_reopen(db):
    with open_store(db) as s:
        s.store_upload(MAC, "app", lines(2), None, UA, received_at=1.0)
    with open_store(db) as s:
        assert s.store_upload(MAC, "app", lines(3), None, UA, received_at=2.0).lines == 1


def test_one_transaction_failure_leaves_nothing(store, monkeypatch):
    store.store_upload(MAC, "app", lines(2), None, UA, received_at=1.0)
    calls = 0
    real = logstore.parse_log_line

    def flaky(line):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        return real(line)

    monkeypatch.setattr(logstore, "parse_log_line", flaky)
    with pytest.raises(RuntimeError):
        store.store_upload(MAC, "app", lines(5), None, UA, received_at=2.0)
    monkeypatch.setattr(logstore, "parse_log_line", real)
    assert store.counts() == (1, 2)
    # The append state was rolled back too: the retry stores exactly the three new lines.
    assert store.store_upload(MAC, "app", lines(5), None, UA, received_at=3.0).lines == 3
    assert texts(store) == [f"line {i}" for i in range(1, 6)]


# ---------------------------------------------------------------------- blank lines and line caps
def test_blank_lines_not_stored_but_counted(store):
    body = b"one\n\n \t\r\nfour\n\n"
    assert store.store_upload(MAC, "app", body, None, None).lines == 2
    assert [(r.line_no, r.text) for r in store.query()] == [(1, "one"), (3 + 1, "four")]
    # appended after the trailing blank line: numbering goes on from line 6
    assert store.store_upload(MAC, "app", body + b"six\n", None, None).lines == 1
    assert [(r.line_no, r.text) for r in store.query()][-1] == (6, "six")
    assert store.store_upload(MAC2, "app", b"\n" * 1000, None, None).lines == 0
    assert store.counts() == (3, 3)


def marker_rows(db):
    return raw(db, "SELECT line_no, text FROM log_lines WHERE module = 'polygen' ORDER BY id")


def test_upload_over_max_lines_is_cut_with_a_marker(store, db):
    """The first max_lines lines, then one marker row; the append state ends at the cut, so the
    whole file sent again stores the rest (and what was appended), numbered on."""
    body = lines(8)
    r = store.store_upload(MAC, "app", body, None, UA, received_at=1.0, max_lines=5)
    assert r == StoredUpload(1, 5, 0, cut_line=6, cut_bytes=len(lines(3, start=6)))
    assert store.uploads() == [(1, MAC, "app", None, 1.0, len(body), 5, 0)]  # the marker is not a line
    assert marker_rows(db) == [(6, logstore.cut_marker(6, len(lines(3, start=6)), 5))]
    assert marker_rows(db)[0][1] == ("[polygen] lines 6 and on (87 bytes) not stored: this upload went over "
                                     "its limit of 5 lines; they are stored when the phone sends them again")
    assert raw(db, "SELECT last_len, last_lines FROM upload_state") == [(len(lines(5)), 5)]
    r = store.store_upload(MAC, "app", body + lines(2, start=9), None, UA, received_at=2.0, max_lines=5)
    assert r == StoredUpload(2, 5, len(lines(5)))
    phone_lines = [(x.line_no, x.text) for x in store.query(limit=None) if x.module != logstore.CUT_MODULE]
    assert phone_lines == [(i, f"line {i}") for i in range(1, 11)]


def test_cut_skips_blank_lines_and_counts_them(store, db):
    """Blank lines take no room under the cap; the state after the cut counts them all."""
    body = b"a\n\n\nb\n\nc\nd\n"
    r = store.store_upload(MAC, "app", body, None, None, max_lines=2)
    assert (r.lines, r.cut_line, r.cut_bytes) == (2, 6, len(b"c\nd\n"))
    assert raw(db, "SELECT last_lines FROM upload_state") == [(5,)]
    assert store.store_upload(MAC, "app", body, None, None, max_lines=2).lines == 2
    assert [(x.line_no, x.text) for x in store.query(limit=None) if x.module != logstore.CUT_MODULE] == [
        (1, "a"), (4, "b"), (6, "c"), (7, "d")]


def test_max_lines_zero_stores_only_the_marker(store, db):
    r = store.store_upload(MAC, "app", lines(2), None, None, max_lines=0)
    assert (r.lines, r.cut_line, r.cut_bytes) == (0, 1, len(lines(2)))
    assert store.counts() == (1, 1) and marker_rows(db)[0][0] == 1
    assert raw(db, "SELECT last_len, last_lines FROM upload_state") == [(0, 0)]
    # a body that fits, or a cap of None, stores everything and no marker
    assert store.store_upload(MAC2, "app", lines(2), None, None, max_lines=2).cut_line is None
    assert store.store_upload(MAC2, "boot", lines(3), None, None).lines == 3
    with pytest.raises(ValueError, match="max_lines must be >= 0"):
        store.store_upload(MAC, "boot", lines(1), None, None, max_lines=-1)
    assert store.counts() == (3, 6)


def test_plan_upload_is_the_append_arithmetic():
    """plan_upload, pure: what a cut upload stores and the state it leaves, without a database."""
    body = b"x\n\ny\nz"
    plan = logstore.plan_upload(None, body)
    assert [(n, text) for n, *_, text, _ in plan.lines] == [(1, "x"), (3, "y"), (4, "z")]
    assert plan.state == (len(body), hashlib.sha256(body).hexdigest(), 4)
    assert (plan.cut_line, list(plan.rows()) == plan.lines) == (None, True)
    plan = logstore.plan_upload(None, body, max_lines=1)
    assert (plan.cut_line, plan.cut_bytes, plan.state[0], plan.state[2]) == (3, len(b"y\nz"), len(b"x\n\n"), 2)
    assert list(plan.rows())[-1][:3] == (3, None, logstore.CUT_MODULE)
    again = logstore.plan_upload(plan.state, body + b"\n")  # the rest, from the cut on
    assert (again.skipped, [n for n, *_ in again.lines]) == (len(b"x\n\n"), [3, 4])
    assert again.state[2] == 4


# ---------------------------------------------------------------------- querying
@pytest.fixture
def filled(store):
    store.store_upload(MAC, "boot", b"000001.000|so   |1|00|boot Begins\n", "5.9.7.47435", UA, received_at=100.0)
    store.store_upload(MAC, "app", b"000002.000|sip  |4|00|REGISTER 50%_done\nraw line\n", "5.9.7.4477", UA, received_at=200.0)
    store.store_upload(MAC2, "app", b"000003.000|sip  |6|00|fatal thing\n", None, None, received_at=300.0)
    return store


def test_query_filters(filled):
    s = filled
    assert texts(s) == ["boot Begins", "REGISTER 50%_done", "raw line", "fatal thing"]
    assert texts(s, mac=MAC2) == ["fatal thing"]
    assert texts(s, mac=[MAC, MAC2]) == texts(s)
    assert texts(s, mac=[]) == []
    assert texts(s, mac=MAC.upper()) == ["boot Begins", "REGISTER 50%_done", "raw line"]
    assert texts(s, kind="boot") == ["boot Begins"]
    assert texts(s, since=200.0) == ["REGISTER 50%_done", "raw line", "fatal thing"]
    assert texts(s, level=4) == ["REGISTER 50%_done", "fatal thing"]
    assert texts(s, grep="begins") == ["boot Begins"]
    assert texts(s, grep="50%_") == ["REGISTER 50%_done"]
    assert texts(s, grep="%") == ["REGISTER 50%_done"]
    assert texts(s, grep="0_d") == []  # "_" is literal, not a wildcard
    assert texts(s, mac=MAC, kind="app", level=1, grep="register") == ["REGISTER 50%_done"]


def test_query_limit_newest_in_order(filled):
    assert [r.text for r in filled.query(limit=2)] == ["raw line", "fatal thing"]


def test_query_default_limit(store):
    store.store_upload(MAC, "app", lines(150), None, None, received_at=1.0)
    rows = store.query()
    assert len(rows) == 100
    assert rows[0].text == "line 51" and rows[-1].text == "line 150"


# ---------------------------------------------------------------------- pruning
def test_prune(filled, db):
    assert filled.prune(150, now=400.0) == 3 + 2  # 3 lines and 2 uploads older than 250
    assert texts(filled) == ["fatal thing"]
    assert raw(db, "SELECT count(*) FROM uploads") == [(1,)]
    assert filled.prune(150, now=400.0) == 0


def test_prune_in_batches(store, monkeypatch):
    monkeypatch.setattr(logstore, "PRUNE_BATCH", 7)
    for i in range(5):
        store.store_upload(f"0004f2{i:06x}", "app", lines(10), None, None, received_at=float(i))
    store.store_upload(MAC, "app", lines(1), None, None, received_at=10.0)
    assert store.prune(5, now=10.0) == 50 + 5
    assert store.counts() == (1, 1)


def test_database_is_private_whatever_the_umask(db_path):
    """The database and SQLite's -wal/-shm files are 0600 even under a permissive umask."""
    import os
    import stat

    old = os.umask(0o002)
    try:
        with LogStore.open(db_path) as s:
            s.store_upload(MAC, "app", lines(2), None, UA, received_at=1000.0)
            files = [db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")]
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
    finally:
        os.umask(old)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(LogStoreError, match=r"cannot open log database .*/nope/logs.db: No such file or directory"):
        LogStore.open(tmp_path / "nope" / "logs.db")


# ---------------------------------------------------------------------- schema version 2
def test_version_1_database_is_migrated_keeping_its_data(db_path):
    """A database made by the previous polygen (schema 1) gains the sightings, the problem index
    and the upload's extensions; what it held stays, its uploads without extensions."""
    conn = sqlite3.connect(db_path)
    for statement in logstore.MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("INSERT INTO uploads (mac, kind, received_at, bytes, lines) VALUES (?, 'app', 5.0, 10, 1)", (MAC,))
    conn.execute("INSERT INTO log_lines (upload_id, mac, kind, line_no, received_at, text, parsed, level)"
                 " VALUES (1, ?, 'app', 1, 5.0, 'Registration failed', 1, 4)", (MAC,))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with LogStore.open(db_path) as store:
        assert store.schema_version == 2
        assert texts(store) == ["Registration failed"]
        assert store.uploads()[0][1] == MAC
        assert store.sightings() == []
        assert store.problems(0)[MAC].text == "Registration failed"
    assert raw(db_path, "SELECT extensions FROM uploads") == [(None,)]


# ---------------------------------------------------------------------- sightings
def seen(mac, kind, when, *, status=200, address="192.0.2.1", ua_model=None, firmware=None, path=None):
    from polygen.sightings import Sighting

    return Sighting(mac, kind, when, when, 1, address, "GET", path or f"/{mac}-phone.cfg", status, ua_model,
                    firmware, f"UA {ua_model}" if ua_model else None, when if ua_model else None)


def test_sightings_coalesce_the_same_in_memory_and_in_the_database(db):
    """The database's upsert and Sighting.merge agree: however the requests are batched, one row
    per phone and kind, first and last time, counts, the newest request's address and answer,
    the newest User-Agent's model."""
    import random

    from polygen.sightings import Coalescer

    rng = random.Random(7)
    requests = []
    times = rng.sample(range(1000), 300)  # distinct: which of two requests at once is newer is moot
    for i in range(300):
        mac = f"0004f200{rng.randrange(4):04x}"
        requests.append(seen(mac, rng.choice(["config", "boot"]), float(times[i]),
                             status=rng.choice([200, 404]), address=f"192.0.2.{i}",
                             ua_model=rng.choice([None, "VVX_410", "SPIP_330"]), firmware=str(i)))
    whole = Coalescer()
    for r in requests:
        whole.add(seen(r.mac, r.kind, r.last_seen, status=r.status, address=r.address, ua_model=r.ua_model,
                       firmware=r.firmware))
    expected = whole.drain()
    with open_store(db) as store:
        batch = Coalescer()
        for n, r in enumerate(requests, 1):
            batch.add(r)
            if n % rng.choice([1, 7, 50]) == 0:
                store.record_sightings(batch.drain())
        store.record_sightings(batch.drain())
        assert store.sightings() == expected
        assert sum(s.requests for s in store.sightings()) == 300
        assert len(store.sightings()) <= 8


def test_sightings_of_one_phone_and_its_reported_model(store):
    store.record_sightings([seen(MAC, "config", 10.0, ua_model="VVX_410", firmware="5.9.7.0000"),
                            seen(MAC, "boot", 20.0, ua_model="VVX_411", firmware="6.4.6.0000"),
                            seen(MAC2, "config", 30.0)])
    assert [s.kind for s in store.sightings(MAC)] == ["boot", "config"]
    assert store.reported_model(MAC) == "VVX_411"  # the newest that had one
    assert store.reported_model(MAC2) is None
    assert store.reported_model("0004f2ffffff") is None
    assert store.seen_macs() == {MAC, MAC2}


def test_tail_offsets_are_written_with_the_sightings(store):
    assert store.tail_offset("host:/var/log/a.log") is None
    store.record_sightings([], [("host:/var/log/a.log", "8:123", 4096)])
    store.record_sightings([seen(MAC, "config", 1.0)], [("host:/var/log/a.log", "8:124", 10)])
    assert store.tail_offset("host:/var/log/a.log") == ("8:124", 10)


def test_prune_drops_sightings_not_seen_within_the_retention(store):
    store.record_sightings([seen(MAC, "config", 100.0), seen(MAC2, "config", 900.0)])
    assert store.prune(500, now=1000.0) == 1
    assert [s.mac for s in store.sightings()] == [MAC2]


# ---------------------------------------------------------------------- problems and extensions
def test_problems_are_each_phones_newest_error_or_registration_failure(store):
    store.store_upload(MAC, "app", b"000001.000|sip  |4|00|old error\n000002.000|sip  |2|00|fine\n", None, UA,
                       received_at=100.0)
    store.store_upload(MAC, "app", b"000001.000|sip  |4|00|old error\n000002.000|sip  |2|00|fine\n"
                                   b"000003.000|sip  |2|00|Registration FAILED: 403 Forbidden\n", None, UA,
                       received_at=200.0)
    store.store_upload(MAC2, "boot", b"000001.000|cfg  |6|00|fatal\n", None, UA, received_at=50.0)
    store.store_upload("0004f2000001", "boot", b"000001.000|cfg  |3|00|only a warning\n", None, UA,
                       received_at=300.0)
    found = store.problems(since=0.0)
    assert {mac: row.text for mac, row in found.items()} == {
        MAC: "Registration FAILED: 403 Forbidden", MAC2: "fatal"}
    assert {mac: row.text for mac, row in store.problems(since=60.0).items()} == {
        MAC: "Registration FAILED: 403 Forbidden"}


def test_lines_are_found_by_the_extensions_the_phone_carried_when_it_uploaded(store):
    """A phone replaced by another keeps its history under the extension it carried then."""
    store.store_upload(MAC, "app", b"000001.000|sip  |2|00|old phone\n", None, UA, received_at=1.0,
                       extensions=["1003"])
    store.store_upload(MAC2, "app", b"000001.000|sip  |2|00|new phone\n", None, UA, received_at=2.0,
                       extensions=["1005", "1003"])
    store.store_upload(MAC, "app", b"000001.000|sip  |2|00|old phone\n000002.000|sip  |2|00|moved on\n", None, UA,
                       received_at=3.0, extensions=["10031"])
    store.store_upload("0004f2000001", "app", b"000001.000|sip  |2|00|not recorded\n", None, UA, received_at=4.0)
    assert texts(store, ext="1003") == ["old phone", "new phone"]
    assert texts(store, ext=["1005", "10031"]) == ["new phone", "moved on"]
    assert texts(store, ext="100") == []
    # uploads stored without a record: by the phones carrying it now
    assert texts(store, ext="1003", ext_macs=["0004f2000001"]) == ["old phone", "new phone", "not recorded"]
    assert texts(store, ext="1003", mac=["0004f2000001"]) == ["old phone", "new phone", "not recorded"]
    assert texts(store, ext=[]) == []
    assert store.has_extension("1005") and not store.has_extension("100")


def test_follow_yields_new_lines_once_as_they_are_stored(store):
    from polygen.logquery import follow

    store.store_upload(MAC, "app", lines(3), None, UA)
    shown = store.query(limit=2)  # the newest two printed; line 1 left out by --limit
    uploads = iter([(MAC2, lines(2)), (MAC, lines(5)), None, (MAC2, b"000009.000|sip  |4|00|bad\n")])
    polls = []

    def sleep(seconds):  # between polls: the sidecar stores the phones' next upload
        polls.append(seconds)
        nxt = next(uploads)
        if nxt is not None:
            store.store_upload(nxt[0], "app", nxt[1], None, UA)

    got = follow(store, shown, sleep=sleep, interval=0.5)
    assert [(r.mac, r.text) for r in itertools.islice(got, 5)] == [
        (MAC2, "line 1"), (MAC2, "line 2"), (MAC, "line 4"), (MAC, "line 5"), (MAC2, "bad")]
    assert polls == [0.5, 0.5, 0.5, 0.5]
    level4 = follow(store, [], sleep=lambda s: store.store_upload(MAC, "boot", b"1|cfg|4|0|x\n1|cfg|2|0|y\n", None,
                                                                    UA), level=4)
    assert next(level4).text == "x"
