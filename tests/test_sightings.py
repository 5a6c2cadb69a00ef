"""polygen.sightings: which requests name a phone, and the bounded coalescing of sightings."""

from __future__ import annotations

import pytest

from polygen.sightings import Coalescer, classify, sighting

MAC = "64167f000410"
UA_410 = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"
UPDATER = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Updater"
UA_SN = f"FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 (SN:{MAC.upper()}) Type/Application"
UA_OTHER_SN = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 (SN:0004f2000330) Type/Application"


@pytest.mark.parametrize(("method", "path", "ua", "expected"), [
    ("GET", f"/{MAC}.cfg", UA_410, (MAC, "config")),
    ("GET", f"/{MAC}-phone.cfg", None, (MAC, "config")),
    ("GET", f"/prov/{MAC.upper()}-web.cfg", "curl/8", (MAC, "config")),
    ("GET", f"/contacts/{MAC}-directory.xml", UA_410, (MAC, "directory")),
    ("PUT", f"/logs/{MAC}-boot.log", UPDATER, (MAC, "boot")),
    ("PUT", f"/{MAC}-app.log", UA_410, (MAC, "upload")),
    ("HEAD", f"/logs/{MAC}-app.log", UA_410, (MAC, "upload")),
    ("PUT", f"/{MAC}-phone.cfg", UA_410, (MAC, "upload")),
    ("PUT", f"/contacts/{MAC}-directory.xml", UA_410, (MAC, "upload")),
    ("GET", f"/{MAC}.cfg", UPDATER, (MAC, "boot")),
    ("GET", "/000000000000.cfg", UA_SN, (MAC, "config")),
    ("GET", "/firmware/5.9.7/sip.ld?x=1", UA_SN.replace("Application", "Updater"), (MAC, "boot")),
    ("GET", "/000000000000.cfg", UA_410, None),  # no serial: no phone named
    ("GET", "/contacts/000000000000-directory.xml", UA_410, None),
    ("GET", "/site.cfg", None, None),
    ("GET", "/healthz", None, None),
    ("GET", "/0004f2abcde.cfg", None, None),  # 11 digits
])
def test_which_phone_and_kind_a_request_names(method, path, ua, expected):
    found = classify(method, path, ua)
    assert (found[:2] if found else None) == expected


def test_the_file_name_wins_and_another_phones_user_agent_tells_nothing():
    mac, kind, ua = classify("GET", f"/{MAC}-phone.cfg", UA_OTHER_SN)
    assert (mac, kind, ua) == (MAC, "config", None)
    mac, _, ua = classify("GET", f"/{MAC}-phone.cfg", UA_SN)
    assert ua.model == "VVX_410" and ua.version == "5.9.7.4477"


def row(mac, when, ua=UA_410, status=200):
    found = classify("GET", f"/{mac}-phone.cfg", ua)
    return sighting(found[0], found[1], found[2], when=when, address="192.0.2.1", method="GET",
                    path=f"/{mac}-phone.cfg", status=status, user_agent=ua)


def test_one_row_per_phone_and_kind_however_many_requests():
    c = Coalescer()
    for i in range(1000):
        c.add(row(f"0004f2{i % 10:06x}", float(i)))
    rows = c.drain()
    assert len(rows) == 10 and sum(r.requests for r in rows) == 1000
    assert [r.mac for r in rows] == sorted(r.mac for r in rows)
    assert (rows[0].first_seen, rows[0].last_seen) == (0.0, 990.0)
    assert len(c) == 0 and c.drain() == []


def test_an_older_request_does_not_replace_the_newest_answer():
    c = Coalescer()
    c.add(row(MAC, 20.0, status=200))
    c.add(row(MAC, 10.0, ua="curl/8", status=404))
    c.add(row(MAC, 15.0, ua=UA_410.replace("5.9.7.4477", "5.9.5.0614")))
    (r,) = c.drain()
    assert (r.status, r.first_seen, r.last_seen, r.firmware, r.requests) == (200, 10.0, 20.0, "5.9.7.4477", 3)


def test_bounds_keep_memory_flat_and_unknown_macs_out():
    c = Coalescer(max_pending=5, max_unknown=2)
    assert c.add(row("0004f2000001", 1.0), known=False) and c.add(row("0004f2000002", 1.0), known=False)
    assert not c.add(row("0004f2000003", 1.0), known=False)  # a third made-up MAC waits for the next batch
    assert c.add(row("0004f2000001", 2.0), known=False)  # one already waiting still merges
    for i in range(4, 8):
        c.add(row(f"0004f200000{i}", 1.0))
    assert len(c) == 5 and c.dropped == 2  # 0004f2000003, 0004f2000007
    c.drain()
    assert c.add(row("0004f2000003", 3.0), known=False)  # the bound is per batch
