"""polygen.status and `polygen status`: the state rules, the filters, the formats, the exit code
for monitoring and the HTML page, on a real build of the example and a real log database."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.logdb import open_store
from polygen.sightings import Sighting
from polygen.status import FIELDS, Served, ago, fleet, format_table, read_served, select
from tests.htmltree import parse

NOW = 1_796_000_000.0  # 2026-11-30T00:53:20Z
DAY = 86400.0
IP330, IP331, IP5000, VVX410 = "0004f2000330", "0004f2000331", "0004f2005000", "64167f000410"


def seen(mac, when, kind="config", ua_model=None, firmware=None, address="192.0.2.9"):
    return Sighting(mac, kind, when - 100, when, 2, address, "GET", f"/{mac}-phone.cfg", 200, ua_model, firmware,
                    "UA" if ua_model else None, when if ua_model else None)


@pytest.fixture
def served(built) -> Served:
    return read_served(built)


def states(rows):
    return {row["mac"]: row["state"] for row in rows}


def test_the_served_build_tells_models_releases_and_lines(served, built):
    assert served.generation == built.resolve().name and served.site_name == "Example Corp"
    assert served.phones[VVX410] == {"model": "VVX410", "ua_token": "VVX_410", "release": "5.9.7",
                                     "lines": ["1005", "1003", "1004"]}
    assert read_served(built.parent / "nothing") == Served(None, None, {})


def test_each_phone_gets_the_first_state_that_applies(served):
    from polygen.logstore import Row

    problem = Row(1, 1, IP331, "app", 3, NOW - 60, None, "sip", 4, 0, "Registration failed: 403", True, None)
    sightings = [
        seen(IP330, NOW - 60, ua_model="SPIP_330", firmware="3.3.5.0000"),
        seen(IP330, NOW - DAY, kind="boot", ua_model="SPIP_330", firmware="3.3.5.0000"),
        seen(IP331, NOW - 60, ua_model="SPIP_331", firmware="4.0.15.1009"),
        seen(IP5000, NOW - 3 * DAY - 3600, ua_model="SSIP_5000"),
        seen(VVX410, NOW - 10, ua_model="VVX_411", firmware="6.4.6.0000"),
        seen("64167f000201", NOW - 5, ua_model="VVX_450"),
    ]
    rows = fleet(served, sightings, {IP331: problem, VVX410: problem}, now=NOW, stale_after=2 * DAY)
    assert [(r["mac"], r["state"], r["problem"]) for r in rows] == [
        ("64167f000201", "unknown", "not in the inventory: polygen phone add 64167f000201 --line EXT"),
        (VVX410, "mismatch", "the phone reports VVX 411, the inventory says VVX 410, whose files it gets; "
                             "correct the model"),
        (IP331, "errors", "Registration failed: 403"),
        (IP5000, "stale", "not seen for 3d 1h"),
        (IP330, "ok", None),
    ]
    ok = rows[-1]
    assert ok == {"state": "ok", "mac": IP330, "problem": None, "model": "IP330", "reported_model": "IP330",
                  "firmware": "3.3.5.0000", "target_release": "3.3.5", "lines": ["1001"], "address": "192.0.2.9",
                  "last_seen": "2026-11-30T00:52:20Z", "last_boot": "2026-11-29T00:53:20Z",
                  "first_seen": "2026-11-29T00:51:40Z"}
    # nothing seen at all: never-seen, with what the inventory says
    rows = fleet(served, [], {}, now=NOW, stale_after=2 * DAY)
    assert states(rows) == dict.fromkeys((IP330, IP331, IP5000, VVX410), "never-seen")
    assert rows[-1]["lines"] == ["1005", "1003", "1004"] and rows[-1]["target_release"] == "5.9.7"


def test_a_model_the_catalog_does_not_know_is_shown_as_reported(served):
    rows = fleet(served, [seen("64167f000299", NOW, ua_model="VVX_999")], {}, now=NOW, stale_after=DAY)
    assert rows[0]["reported_model"] == "VVX_999"


@pytest.mark.parametrize(("seconds", "text"), [(59, "0m"), (600, "10m"), (3600, "1h"), (3 * 3600 + 120, "3h 2m"),
                                               (DAY, "1d"), (9 * DAY + 7200, "9d 2h")])
def test_ago(seconds, text):
    assert ago(seconds) == text


def test_filters(served):
    rows = fleet(served, [seen(IP330, NOW)], {}, now=NOW, stale_after=DAY)
    assert [r["mac"] for r in select(rows, exts=["1003"])] == [VVX410]
    assert [r["mac"] for r in select(rows, macs=[IP330, IP331], states=["never-seen"])] == [IP331]
    assert len(select(rows, states=["never-seen", "ok"])) == 4


def test_the_table_shows_what_a_phone_sent_visibly():
    row = dict.fromkeys(FIELDS) | {"mac": "64167f000201", "state": "unknown", "lines": [],
                                   "reported_model": "VVX\x1b[2J", "last_seen": "2026-12-01T23:32:20Z"}
    assert format_table([row]).splitlines() == [
        "STATE    MAC           MODEL  REPORTED  LINES  FIRMWARE  TARGET  LAST SEEN            ADDRESS  PROBLEM",
        "unknown  64167f000201  -      VVX\\e[2J  -      -         -       2026-12-01 23:32:20  -        -",
        "1 phone: 1 unknown",
    ]


# ---------------------------------------------------------------- the command
@pytest.fixture
def db(tmp_path, built):
    path = tmp_path / "logs.db"
    now = time.time()
    with open_store(path) as store:
        store.record_sightings([seen(IP330, now - 60, ua_model="SPIP_330", firmware="3.3.5.0000"),
                                seen(VVX410, now - 3 * DAY, ua_model="VVX_410", firmware="5.9.7.0000"),
                                seen("64167f000201", now - 30, ua_model="VVX_410")])
        store.store_upload(IP330, "app", b"1201120000|sip  |4|00|Registration failed: \x1b[31m401\n", None, None)
    return path


def status(built, db, *args):
    return CliRunner().invoke(cli, ["status", "-o", str(built), "--db", str(db), *args], catch_exceptions=False)


def test_status_formats(built, db):
    table = status(built, db)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["STATE", "MAC", "MODEL", "REPORTED", "LINES", "FIRMWARE", "TARGET", "LAST", "SEEN",
                                "ADDRESS", "PROBLEM"]
    assert [line.split()[:2] for line in lines[1:-1]] == [
        ["unknown", "64167f000201"], ["errors", IP330], ["stale", VVX410], ["never-seen", IP331],
        ["never-seen", IP5000]]
    assert lines[2].endswith("Registration failed: \\e[31m401")
    assert lines[-1] == "5 phones: 1 unknown, 1 errors, 1 stale, 2 never-seen"
    rows = json.loads(status(built, db, "--format", "json").output)
    assert [list(row) for row in rows] == [list(FIELDS)] * 5
    assert rows[1]["problem"] == "Registration failed: \x1b[31m401"  # JSON escapes it: \u001b
    assert "\\u001b" in status(built, db, "--format", "json").output
    got = list(csv.reader(io.StringIO(status(built, db, "--format", "csv", "--ext", "1003").output)))
    assert got[0] == list(FIELDS) and len(got) == 2
    assert got[1][:3] == [VVX410, "stale", "VVX410"] and got[1][10] == "1005 1003 1004"


def test_status_filters_and_fail_on(built, db):
    result = status(built, db, "--state", "stale,never-seen", "--mac", "00:04:F2:00:03:31")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "1 phone: 1 never-seen"
    result = status(built, db, "--fail-on", "stale", "--fail-on", "unknown")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: 2 phones: 1 unknown, 1 stale (--fail-on stale,unknown)"
    assert status(built, db, "--fail-on", "stale", "--stale", "5d").exit_code == 0
    bad = CliRunner().invoke(cli, ["status", "-o", str(built), "--db", str(db), "--state", "lost"])
    assert bad.exit_code == 2 and "'lost' is not a state; use ok, never-seen, stale, unknown, mismatch, errors" in bad.output
    env = CliRunner().invoke(cli, ["status"], env={"POLYGEN_OUT": str(built), "POLYGEN_DB": str(db),
                                                   "POLYGEN_STATUS_FAIL_ON": "unknown"})
    assert env.exit_code == 1


def test_status_without_a_database(built, tmp_path):
    result = CliRunner().invoke(cli, ["status", "-o", str(built), "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: no log database at {tmp_path / 'none.db'}: start `polygen serve --db {tmp_path / 'none.db'}` first")


def test_status_html_page(built, db, tmp_path):
    page = tmp_path / "status.html"
    result = status(built, db, "--html", str(page))
    assert result.exit_code == 0
    assert result.output == f"{page}: 5 phones: 1 unknown, 1 errors, 1 stale, 2 never-seen\n"
    doc = parse(page.read_text())
    assert doc.by_id("generation").text() == built.resolve().name
    assert [tr.find_all("td")[1].text() for tr in doc.find("tbody").find_all("tr")] == [
        "64167f000201", IP330, VVX410, IP331, IP5000]
    assert "\x1b" not in page.read_text()
    assert doc.by_id("commit").text() == "unknown"  # built from the files, not a commit


def test_status_html_page_names_the_commit_served(inventory_dir, firmware_dir, db, tmp_path):
    import os
    import subprocess

    from .conftest import TEMPLATES

    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "inventory"]):
        subprocess.run(["git", *cmd], cwd=inventory_dir, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=inventory_dir, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    out = tmp_path / "git-out"
    r = CliRunner().invoke(cli, ["build", "--git", "-i", str(inventory_dir), "-o", str(out), "-t", str(TEMPLATES),
                                 "--firmware", str(firmware_dir)])
    assert r.exit_code == 0, r.output
    page = tmp_path / "status.html"
    assert status(out, db, "--html", str(page)).exit_code == 0
    commit = parse(page.read_text()).by_id("commit").find("span")
    assert (commit.text(), commit.attrs["title"]) == (head[:12], head)


# ---------------------------------------------------------------- phone add, with the sightings
def test_phone_add_takes_the_model_the_phone_reported(inventory_dir, db):
    result = CliRunner().invoke(cli, ["ext", "add", "2001", "--first-name", "Alan", "-i", str(inventory_dir)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["phone", "add", "64:16:7f:00:02:01", "--line", "2001", "-i",
                                      str(inventory_dir), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith("added phone 64167f000201 (VVX410; line 2001)")
    never = CliRunner().invoke(cli, ["phone", "add", "64:16:7f:00:02:02", "--line", "2001", "-i",
                                     str(inventory_dir), "--db", str(db)])
    assert never.exit_code == 1
    assert never.output.splitlines()[-1] == "Error: no model for 64167f000202: give it with --model, e.g. --model VVX410"
