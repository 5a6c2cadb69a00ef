"""`polygen logs`, `polygen logs prune` and `polygen serve` through CliRunner.

The ``db`` fixture is a SQLite file or a PostgreSQL database (tests/pg.py): the commands read both
the same way."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.logdb import describe_db, open_store

MAC_330 = "0004f2000330"  # carries 1001 in the example inventory
MAC_410 = "64167f000410"  # carries 1005, 1003, 1004
OTHER = "0004f2abcdef"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    path = tmp_path / "logs.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    t0 = datetime(2026, 11, 1, 10, 0).timestamp()
    with open_store(path) as store:
        store.store_upload(MAC_330, "boot", b"000001.000|cfg  |1|00|boot begins\n", "4.0.15.1009", None,
                           received_at=t0)
        store.store_upload(MAC_410, "app", b"1101103000|sip  |4|03|REGISTER failed | 401\nraw text\n",
                           "5.9.7.4477", None, received_at=t0 + 60)
        store.store_upload(OTHER, "app", b"1101103100|so   |6|00|fatal audio\n", None, None,
                           received_at=t0 + 120)
    return path


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def test_logs_text(db):
    result = invoke("logs", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "2026-11-01T10:00:00+00:00 0004f2000330 boot:1 L1 cfg   000001.000 boot begins",
        "2026-11-01T10:01:00+00:00 64167f000410 app:1 L4 sip   1101103000 REGISTER failed | 401",
        "2026-11-01T10:01:00+00:00 64167f000410 app:2 -  -     -          raw text",
        "2026-11-01T10:02:00+00:00 0004f2abcdef app:1 L6 so    1101103100 fatal audio",
    ]


def test_logs_json(db):
    result = invoke("logs", "--db", str(db), "--format", "json", "--limit", "1")
    assert result.exit_code == 0
    assert json.loads(result.output) == [{
        "id": 4, "upload_id": 3, "mac": OTHER, "kind": "app", "line_no": 1,
        "received_at": datetime(2026, 11, 1, 10, 2).timestamp(), "time": "1101103100", "module": "so",
        "level": 6, "missed": 0, "text": "fatal audio", "parsed": True, "fw_version": None,
        "received": "2026-11-01T10:02:00+00:00",
    }]


def texts(result):
    assert result.exit_code == 0, result.output
    return [row["text"] for row in json.loads(result.output)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mac", "64:16:7F:00:04:10"], ["REGISTER failed | 401", "raw text"]),
        (["--mac", MAC_330, "--mac", OTHER], ["boot begins", "fatal audio"]),
        (["--level", "4"], ["REGISTER failed | 401", "fatal audio"]),
        (["--grep", "REGISTER"], ["REGISTER failed | 401"]),
        (["--grep", "register"], ["REGISTER failed | 401"]),
        (["--grep", "%"], []),
        (["--since", "2026-11-01T10:01"], ["REGISTER failed | 401", "raw text", "fatal audio"]),
        (["--since", "2026-11-02"], []),
        (["--limit", "2"], ["raw text", "fatal audio"]),
        (["--limit", "0"], ["boot begins", "REGISTER failed | 401", "raw text", "fatal audio"]),
        (["--mac", OTHER, "--level", "4", "--grep", "AUDIO"], ["fatal audio"]),
    ],
)
def test_logs_filters(db, args, expected):
    assert texts(invoke("logs", "--db", str(db), "--format", "json", *args)) == expected


def test_logs_by_extension(db, inventory_dir):
    result = invoke("logs", "--db", str(db), "--ext", "1003", "-i", str(inventory_dir))
    assert result.exit_code == 0
    assert [line.split()[1] for line in result.output.splitlines()] == [MAC_410, MAC_410]
    result = invoke("logs", "--db", str(db), "--ext", "1001", "--ext", "1005", "-i", str(inventory_dir))
    assert [line.split()[1] for line in result.output.splitlines()] == [MAC_330, MAC_410, MAC_410]


def test_logs_envvars(db):
    result = invoke("logs", env={"POLYGEN_DB": str(db), "POLYGEN_LOGS_LEVEL": "6"})
    assert result.exit_code == 0
    assert result.output.rstrip().endswith("fatal audio")
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "Error: invalid time 'yesterday': use a duration ago (1h, 30m, 2d) "
                                   "or a date/time (2026-11-01, 2026-11-01T10:00)"),
        (["--mac", "nope"], "Error: invalid MAC address 'nope': expected 12 hex digits, e.g. 0004f2abcdef"),
    ],
)
def test_logs_errors(db, args, message):
    result = CliRunner().invoke(cli, ["logs", "--db", str(db), *args])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == message


def test_logs_unknown_extension(db, inventory_dir):
    result = CliRunner().invoke(cli, ["logs", "--db", str(db), "--ext", "4711", "-i", str(inventory_dir)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"Error: no phone carries extension 4711, in {inventory_dir} or in "
                                              f"the uploads stored in {describe_db(db)}")


def test_logs_missing_database(tmp_path):
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["logs", "--db", str(missing)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: no log database at {missing}: start `polygen serve --db {missing}` first")
    assert not missing.exists()


def test_logs_bad_level_is_usage_error(db):
    result = CliRunner().invoke(cli, ["logs", "--db", str(db), "--level", "9"])
    assert result.exit_code == 2


def test_prune(db):
    shown = describe_db(db)  # a URL without its password
    result = invoke("logs", "prune", "--db", str(db), "--older-than", "5200w")
    assert result.output == f"pruned 0 rows older than 5200w from {shown}\n"
    result = invoke("logs", "prune", "--db", str(db), "--older-than", "1s")
    assert result.output == f"pruned 7 rows older than 1s from {shown}\n"  # 4 lines, 3 uploads
    assert invoke("logs", "--db", str(db)).output == ""


def test_prune_errors(db):
    result = CliRunner().invoke(cli, ["logs", "prune", "--db", str(db), "--older-than", "soon"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: invalid duration 'soon': use a number and a unit s, m, h, d or w (e.g. 90s, 15m, 1h, 30d, 2w)")
    result = CliRunner().invoke(cli, ["logs", "prune", "--db", str(db)])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [["logs"], ["logs", "prune"], ["serve"], ["watch"]])
def test_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "env var:" in result.output


def test_every_option_has_an_envvar():
    from polygen.cli import logs_cmd, logs_prune_cmd, serve_cmd, watch_cmd

    for command in (logs_cmd, logs_prune_cmd, serve_cmd, watch_cmd):
        for param in command.params:
            if param.name == "help":
                continue
            assert param.envvar and str(param.envvar).startswith("POLYGEN_"), (command.name, param.name)
            assert param.show_envvar, (command.name, param.name)


def test_serve_bad_retention(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "x.db"), "--retention", "forever"])
    assert result.exit_code == 1
    assert "Error: invalid duration 'forever'" in result.output
    assert not (tmp_path / "x.db").exists()


def test_prune_postgresql_hides_password(pg_cluster, pg_url):
    open_store(pg_url).close()
    result = invoke("logs", "prune", "--older-than", "30d", env={"POLYGEN_DB": pg_url})
    assert result.output == (f"pruned 0 rows older than 30d from postgresql://polygen:***@127.0.0.1:"
                             f"{pg_cluster.port}/polygen?options={pg_url.split('options=')[1]}\n")


def test_logs_postgresql_down():
    from tests.daemons import free_port

    port = free_port()
    result = CliRunner().invoke(cli, ["logs", "--db", f"postgresql://polygen:pw@127.0.0.1:{port}/polygen"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach log database postgresql://polygen:***@127.0.0.1:{port}"
                                    "/polygen: connection failed: ")
    assert "Connection refused" in result.output and ":pw@" not in result.output


def test_logs_follow_prints_new_lines_as_they_land_until_ctrl_c(db):
    """`polygen logs --follow` as a process: the stored lines, then each new one once, on both
    databases; Ctrl-C (SIGINT) ends it quietly with exit 0."""
    import queue
    import signal
    import subprocess
    import sys
    import threading

    from tests.conftest import clean_env

    proc = subprocess.Popen([sys.executable, "-m", "polygen", "logs", "--db", str(db), "--follow", "--level", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(TZ="UTC"))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def next_line() -> str:
        return lines.get(timeout=20).rstrip("\n")

    try:
        assert next_line().endswith("REGISTER failed | 401")
        assert next_line().endswith("fatal audio")
        with open_store(db) as store:
            store.store_upload(MAC_330, "app", b"1101110000|sip  |2|00|fine\n1101110001|sip  |5|00|major trouble\n",
                               None, None)
        line = next_line()
        assert line.split()[1:3] == [MAC_330, "app:2"] and line.endswith("major trouble")
        with open_store(db) as store:
            store.store_upload(OTHER, "app", b"1101103100|so   |6|00|fatal audio\n1101110002|so   |4|00|again\n",
                               None, None)
        assert next_line().endswith("again")  # appended: only the new line, once
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0 and proc.stderr.read() == ""
    proc.stderr.close()
    proc.stdout.close()
