"""What the sidecar records of the requests: sightings of phones (known or not), written in
batches, the extensions of an upload, and /metrics. Against a real build of the example and a
real SQLite log database; the sightings are written by polygen.sidecar.observe.flush, which the
server's loop calls every --sightings-flush seconds (here: by the test, when it wants them)."""

from __future__ import annotations

import base64
import sqlite3

import pytest
from prometheus_client.parser import text_string_to_metric_families

from polygen.build import BuildOptions, run
from polygen.logdb import open_store
from polygen.sidecar import SidecarConfig, create_app, keys
from polygen.sidecar.observe import BATCH, flush
from tests.conftest import TEMPLATES

MAC = "64167f000410"  # the example's VVX 410: lines 1005, 1003, 1004
UNKNOWN = "64167f000201"
UA = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"
UPDATER = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Updater"
BOOT_LOG = b"0101000001|cfg  |2|00|booting\n0101000002|sip  |4|00|Registration failed: 403\n"


@pytest.fixture
def app(built, tmp_path):
    return create_app(SidecarConfig(out=built, db=tmp_path / "logs.db", sightings_flush=3600.0))


@pytest.fixture
async def client(aiohttp_client, app):
    return await aiohttp_client(app)


class CountingWrites:
    """The app's own store writer, counting the batches of sightings it writes."""

    def __init__(self, app):
        self.writer = app[keys.STORE]
        self.batches: list[int] = []
        real = self.writer.record_sightings

        async def record(rows, offsets=()):
            self.batches.append(len(rows))
            return await real(rows, offsets)

        self.writer.record_sightings = record


async def boot(client, mac: str, ua: str = UA) -> list[int]:
    """The requests of a boot that name the phone, as a phone sends them; their statuses."""
    statuses = []
    for path in (f"/{mac}.cfg", "/000000000000.cfg", f"/{mac}-phone.cfg", f"/contacts/{mac}-directory.xml"):
        async with client.get(path, headers={"User-Agent": ua}) as r:
            statuses.append(r.status)
    async with client.put(f"/logs/{mac}-boot.log", data=BOOT_LOG,
                          headers={"User-Agent": ua.replace("Application", "Updater")}) as r:
        statuses.append(r.status)
    return statuses


async def test_known_and_unknown_phones_are_seen_and_written_in_one_batch(client, app, tmp_path):
    writes = CountingWrites(app)
    assert await boot(client, MAC) == [404, 200, 200, 200, 201]
    # a phone the build does not know: its files are 404, its upload refused, and it is remembered
    assert await boot(client, UNKNOWN, UA.replace("VVX_410", "VVX_411")) == [404, 200, 404, 404, 404]
    async with client.get("/healthz"):
        pass
    with open_store(tmp_path / "logs.db") as store:
        assert store.sightings() == []  # nothing written per request
        await flush(app)
        assert writes.batches == [6]
        got = {(s.mac, s.kind): (s.requests, s.path, s.status, s.ua_model, s.address) for s in store.sightings()}
        assert [u[1] for u in store.uploads()] == [MAC]  # the unknown phone's log was not stored
        assert store.query(ext="1003")[-1].text == "Registration failed: 403"
    assert got == {
        (MAC, "config"): (2, f"/{MAC}-phone.cfg", 200, "VVX_410", "127.0.0.1"),
        (MAC, "directory"): (1, f"/contacts/{MAC}-directory.xml", 200, "VVX_410", "127.0.0.1"),
        (MAC, "boot"): (1, f"/logs/{MAC}-boot.log", 201, "VVX_410", "127.0.0.1"),
        (UNKNOWN, "config"): (2, f"/{UNKNOWN}-phone.cfg", 404, "VVX_411", "127.0.0.1"),
        (UNKNOWN, "directory"): (1, f"/contacts/{UNKNOWN}-directory.xml", 404, "VVX_411", "127.0.0.1"),
        (UNKNOWN, "boot"): (1, f"/logs/{UNKNOWN}-boot.log", 404, "VVX_411", "127.0.0.1"),
    }
    conn = sqlite3.connect(tmp_path / "logs.db")
    assert conn.execute("SELECT extensions FROM uploads").fetchall() == [(" 1005 1003 1004 ",)]
    conn.close()
    await flush(app)
    assert writes.batches == [6]  # nothing new: no write


async def test_a_boot_storm_is_a_few_writes_not_one_per_request(client, app, tmp_path):
    writes = CountingWrites(app)
    phones = [f"0004f2{n:06x}" for n in range(300)]
    for _round in range(3):
        for mac in phones:
            async with client.get(f"/{mac}.cfg", headers={"User-Agent": UA}) as r:
                assert r.status == 404
    await flush(app)
    assert writes.batches == [300] and BATCH >= 300
    with open_store(tmp_path / "logs.db") as store:
        assert {s.requests for s in store.sightings()} == {3}


async def test_requests_held_back_or_malformed_are_not_sightings(client, app, tmp_path):
    async with client.get(f"/{MAC}-phone.cfg?x=1", headers={"User-Agent": UA}) as r:
        assert r.status == 400
    await flush(app)
    with open_store(tmp_path / "logs.db") as store:
        assert store.sightings() == []


async def test_the_last_sightings_are_written_when_the_server_stops(aiohttp_client, app, tmp_path):
    client = await aiohttp_client(app)
    await boot(client, MAC)
    await client.close()  # the app's cleanup: one last flush before the database closes
    with open_store(tmp_path / "logs.db") as store:
        assert {s.kind for s in store.sightings()} == {"config", "directory", "boot"}


def metrics_of(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics(client, app):
    await boot(client, MAC)
    await boot(client, UNKNOWN)
    await flush(app)
    await boot(client, "64167f000202")  # seen, not written yet: counted too
    async with client.get("/metrics") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        m = metrics_of(await r.text())
    assert m[("polygen_uploads_total", (("kind", "boot"),))] == 1
    assert m[("polygen_log_lines_stored_total", ())] == 2
    assert m[("polygen_refusals_total", (("reason", "unknown_phone"),))] == 2
    assert m[("polygen_refusals_total", (("reason", "not_found"),))] == 7  # 3x <mac>.cfg, 4 unknown files
    assert m[("polygen_phones_seen", (("inventory", "known"),))] == 1
    assert m[("polygen_phones_seen", (("inventory", "unknown"),))] == 2
    assert m[("polygen_phones_served", ())] == 4
    assert m[("polygen_generation_info", (("generation", "g000001"),))] == 1
    assert m[("polygen_build_failures_total", ())] == 0
    gen = app[keys.TREE].generation()
    assert m[("polygen_last_good_build_timestamp_seconds", ())] == (gen / ".polygen-manifest.json").stat().st_mtime


AUTH = '\n  provisioning_auth:\n    user: phones-2026b\n    password: "new-pass"\n'


async def test_metrics_need_the_provisioning_auth_when_the_build_has_it(aiohttp_client, inventory_dir,
                                                                       firmware_dir, tmp_path):
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace("  settings:\n", AUTH.lstrip("\n") + "  settings:\n"))
    out = tmp_path / "out"
    run(BuildOptions(inventory_dir, out, TEMPLATES, firmware_dir))
    client = await aiohttp_client(create_app(SidecarConfig(out=out, db=tmp_path / "logs.db")))
    async with client.get("/metrics") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="polygen"'
    good = "Basic " + base64.b64encode(b"phones-2026b:new-pass").decode()
    async with client.get("/metrics", headers={"Authorization": good}) as r:
        assert r.status == 200
        assert "polygen_phones_served 4.0" in await r.text()
    async with client.get("/metrics", headers={"Authorization": good.replace("Y", "Z")}) as r:
        assert r.status == 401
