"""`polygen status` end to end: simulated phones boot against the real sidecar (`polygen serve`
in a subprocess), or against the real nginx in front of it, and `polygen status` (a subprocess
too) shows each in the state it earned; then `polygen phone add` enrols the unknown phone with
the model it reported, a build serves it, and its next boot makes it ok."""

from __future__ import annotations

import json
import time

import pytest

from polygen.catalog import Catalog
from polygen.simulate import HttpTransport, boot
from tests.test_e2e import Sidecar, Site, example_phones, polygen, start_nginx

UNKNOWN = "64:16:7f:00:02:01"
FLUSH = "0.2"  # seconds between the sidecar's writes of its sightings


def model_ua(model: str) -> str:
    return Catalog().find(model).user_agent


def status(site: Site, *args: str) -> dict[str, dict]:
    result = polygen("status", "-o", str(site.out), "--db", str(site.db), "--format", "json", *args, cwd=site.root)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(list(row) == ["mac", "state", "model", "reported_model", "firmware", "target_release",
                             "first_seen", "last_seen", "last_boot", "address", "lines", "problem"] for row in rows)
    return {row["mac"]: row for row in rows}


def status_when(site: Site, done, *args: str, timeout: float = 20.0) -> dict[str, dict]:
    """`polygen status` once ``done(rows)`` holds: the sidecar writes its sightings every FLUSH s."""
    deadline = time.monotonic() + timeout
    while True:
        rows = status(site, *args)
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture
def site(tmp_path) -> Site:
    s = Site(tmp_path / "srv")
    s.build()
    return s


def test_status_shows_each_phone_as_it_booted_then_phone_add_enrols_the_unknown_one(site):
    sidecar = Sidecar(site, "--sightings-flush", FLUSH).start()
    try:
        url = f"http://127.0.0.1:{sidecar.port}/"
        phones = {p.norm: p for p in example_phones(site.inventory)}
        ip330, ip331, ip5000, vvx410 = (phones[m] for m in
                                        ("0004f2000330", "0004f2000331", "0004f2005000", "64167f000410"))
        for phone in (ip330, vvx410):  # booting as the inventory says
            assert boot(HttpTransport(url), phone.norm, model_ua(phone.model)).ok
        # the IP 331's MAC on a VVX 411: the inventory gives it a SIP phone's files
        boot(HttpTransport(url), ip331.norm, model_ua("VVX411"))
        # a phone nobody added yet: its files are 404, its upload refused
        report = boot(HttpTransport(url), UNKNOWN, model_ua("VVX410"))
        assert not report.ok and report.requests[-1].status == 404

        rows = status_when(site, lambda r: "64167f000201" in r and r[ip331.norm]["reported_model"])
        assert {mac: row["state"] for mac, row in rows.items()} == {
            ip330.norm: "ok", vvx410.norm: "ok", ip331.norm: "mismatch", ip5000.norm: "never-seen",
            "64167f000201": "unknown"}
        assert rows[vvx410.norm] | {"first_seen": None, "last_seen": None, "last_boot": None} == {
            "mac": vvx410.norm, "state": "ok", "model": "VVX410", "reported_model": "VVX410",
            "firmware": "5.9.7.0000", "target_release": "5.9.7", "first_seen": None, "last_seen": None,
            "last_boot": None, "address": "127.0.0.1", "lines": ["1005", "1003", "1004"], "problem": None}
        assert rows[vvx410.norm]["first_seen"] <= rows[vvx410.norm]["last_boot"] <= rows[vvx410.norm]["last_seen"]
        assert rows[ip331.norm]["reported_model"] == "VVX411" and rows[ip331.norm]["model"] == "IP331"
        assert rows[ip331.norm]["problem"] == ("the phone reports VVX 411, the inventory says SoundPoint IP 331, "
                                               "whose files it gets; correct the model")
        assert rows[ip5000.norm]["last_seen"] is None and rows[ip5000.norm]["lines"] == ["1099"]
        unknown = rows["64167f000201"]
        assert (unknown["model"], unknown["reported_model"], unknown["lines"]) == (None, "VVX410", [])

        # for monitoring: exit 1 while a phone shown is in a --fail-on state
        failing = polygen("status", "-o", str(site.out), "--db", str(site.db), "--fail-on", "unknown,mismatch",
                          cwd=site.root)
        assert failing.returncode == 1
        assert failing.stderr.splitlines()[-1] == "Error: 2 phones: 1 unknown, 1 mismatch (--fail-on unknown,mismatch)"
        assert polygen("status", "-o", str(site.out), "--db", str(site.db), "--fail-on", "stale",
                       cwd=site.root).returncode == 0

        # enrol it: an extension, then the phone with the model it reported (no --model)
        added = polygen("ext", "add", "2001", "--first-name", "Alan", "-i", str(site.inventory), cwd=site.root)
        assert added.returncode == 0, added.stderr
        added = polygen("phone", "add", UNKNOWN, "--line", "2001", "-i", str(site.inventory), "--db", str(site.db),
                        cwd=site.root)
        assert added.returncode == 0, added.stderr
        assert added.stdout.endswith("added phone 64167f000201 (VVX410; line 2001)\n")
        site.build()
        assert boot(HttpTransport(url), UNKNOWN, model_ua("VVX410")).ok
        rows = status_when(site, lambda r: r["64167f000201"]["state"] == "ok", "--mac", UNKNOWN)
        assert list(rows) == ["64167f000201"]
        assert rows["64167f000201"] | {"first_seen": None, "last_seen": None, "last_boot": None} == {
            "mac": "64167f000201", "state": "ok", "model": "VVX410", "reported_model": "VVX410",
            "firmware": "5.9.7.0000", "target_release": "5.9.7", "first_seen": None, "last_seen": None,
            "last_boot": None, "address": "127.0.0.1", "lines": ["2001"], "problem": None}
    finally:
        sidecar.stop()


def test_behind_nginx_the_json_access_log_gives_the_same_status(site):
    """nginx serves the configs itself; the sidecar reads its JSON access log (--nginx-log), so
    the phones' config fetches are seen as with the sidecar alone."""
    access_log = site.root / "polygen-access.log"
    sidecar = Sidecar(site, "--no-static", "--sightings-flush", FLUSH, "--nginx-log", str(access_log)).start()
    try:
        nginx = start_nginx(site, sidecar.port, "--access-log", str(access_log))
        try:
            url = f"http://127.0.0.1:{nginx.port}/"
            assert boot(HttpTransport(url), "64167f000410", model_ua("VVX410")).ok
            boot(HttpTransport(url), "0004f2000331", model_ua("VVX411"))
            boot(HttpTransport(url), UNKNOWN, model_ua("VVX410"))
            rows = status_when(site, lambda r: len(r) == 5 and r["0004f2000331"]["state"] == "mismatch")
        finally:
            nginx.stop()
    finally:
        sidecar.stop()
    assert {mac: row["state"] for mac, row in rows.items()} == {
        "64167f000410": "ok", "0004f2000331": "mismatch", "0004f2000330": "never-seen",
        "0004f2005000": "never-seen", "64167f000201": "unknown"}
    from polygen.logdb import open_store

    with open_store(site.db) as store:
        seen = {(s.mac, s.kind): s for s in store.sightings()}
    # what only nginx answered: the config and directory fetches, each once (no double count)
    # <mac>.cfg and <mac>-phone.cfg from nginx's log; the override files, which nginx passes on,
    # from the sidecar (not twice)
    config = seen[("64167f000410", "config")]
    assert (config.requests, config.path, config.status, config.ua_model) == (
        4, "/overrides/64167f000410-web.cfg", 404, "VVX_410")
    assert seen[("64167f000410", "directory")].path == "/contacts/64167f000410-directory.xml"
    assert seen[("64167f000410", "boot")].requests == 1  # the upload: seen by the sidecar, skipped in the log
    assert seen[(UNKNOWN.replace(":", ""), "config")].status == 404
