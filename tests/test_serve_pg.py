"""`polygen serve --db postgresql://...`: real servers (subprocesses) on one real PostgreSQL.

* Two servers share one database and take uploads for the same phones, the same upload at the
  same moment on both: every line is stored once.
* The database goes down: uploads answer 503 (Retry-After) while configs are still served; when
  it is back, the phone's next try is stored, and nothing is lost or stored twice.
* A server whose database cannot be reached at start says so and exits 1.
* The sidecar's writers (polygen.sidecar.store) store with several connections at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import aiohttp

from polygen.logdb import open_store
from tests.daemons import free_port
from tests.pg import PASSWORD, PgCluster
from tests.test_serve_faults import ROOT, WAIT, Serve
from tests.test_sidecar import make_generation, point_out

MACS = [f"0004f2{i:06x}" for i in range(6)]
UPLOADS = 8
LINES = 25


def log_body(mac: str, uploads: int) -> bytes:
    """A phone's app log after ``uploads`` rounds of LINES lines; each upload sends all of it."""
    return b"".join(f"{u:06d}.{i:03d}|app1 |2|00|{mac} U{u}L{i}\n".encode()
                    for u in range(uploads) for i in range(LINES))


def expected_texts(mac: str, uploads: int) -> list[str]:
    return [f"{mac} U{u}L{i}" for u in range(uploads) for i in range(LINES)]


def site(tmp_path):
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001", macs=MACS))
    return base / "out"


async def put(session: aiohttp.ClientSession, url: str, mac: str, body: bytes) -> int:
    async with session.put(f"{url}/logs/{mac}-app.log", data=body) as r:
        await r.read()
        return r.status


async def test_two_servers_one_database_store_every_line_once(tmp_path, pg_url):
    out = site(tmp_path)
    servers = [Serve(tmp_path, out, pg_url), Serve(tmp_path, out, pg_url)]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
            for server in servers:
                await server.ready(session)

            async def phone(mac: str):
                for u in range(1, UPLOADS + 1):
                    body = log_body(mac, u)
                    if u % 2:  # sent to both servers at once: one stores the new lines, the other nothing
                        statuses = await asyncio.gather(*(put(session, s.url, mac, body) for s in servers))
                        assert sorted(statuses) == [201, 204], (mac, u, statuses)
                    else:  # the load balancer picks one
                        assert await put(session, servers[u % 4 // 2].url, mac, body) == 201

            await asyncio.gather(*(phone(mac) for mac in MACS))
    finally:
        codes = [s.stop() for s in servers]
    assert codes == [0, 0]
    with open_store(pg_url) as store:
        for mac in MACS:
            rows = store.query(mac=mac, limit=None)
            assert [r.text for r in rows] == expected_texts(mac, UPLOADS), mac
            assert [r.line_no for r in rows] == list(range(1, UPLOADS * LINES + 1)), mac
    for s in servers:
        output = s.log.read_text()
        assert "db=postgresql://polygen:***@127.0.0.1:" in output
        assert PASSWORD not in output


async def test_database_down_uploads_503_then_stored_once(tmp_path):
    out = site(tmp_path)
    mac = MACS[0]
    with PgCluster() as cluster:
        server = Serve(tmp_path, out, cluster.url())
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
                await server.ready(session)
                assert await put(session, server.url, mac, log_body(mac, 1)) == 201

                cluster.stop()
                async with session.put(f"{server.url}/logs/{mac}-app.log", data=log_body(mac, 2)) as r:
                    assert r.status == 503
                    assert r.headers["Retry-After"] == "30"
                    assert await r.json() == {"error": {"status": 503, "message":
                                                        "the log database is unavailable: try again later"}}
                async with session.get(f"{server.url}/healthz") as r:
                    assert r.status == 503
                    assert (await r.json())["db"] is False
                async with session.get(f"{server.url}/000000000000.cfg") as r:
                    assert r.status == 200  # phones still boot and get their configs

                cluster.start()
                # The phone tries again later; the server reconnects on a later try.
                deadline = time.monotonic() + WAIT
                while (status := await put(session, server.url, mac, log_body(mac, 2))) == 503:
                    assert time.monotonic() < deadline, "the upload was never stored after the database came back"
                    await asyncio.sleep(0.2)  # the phone's retry, polled with a deadline
                assert status == 201
                assert await put(session, server.url, mac, log_body(mac, 3)) == 201
                async with session.get(f"{server.url}/healthz") as r:
                    assert (r.status, (await r.json())["db"]) == (200, True)
        finally:
            assert server.stop() == 0
        with open_store(cluster.url()) as store:
            rows = store.query(mac=mac, limit=None)
            assert [r.text for r in rows] == expected_texts(mac, 3)
            assert [r.line_no for r in rows] == list(range(1, 3 * LINES + 1))
        output = server.log.read_text()
        assert "status=503" in output and "cannot reach log database" in output
        assert PASSWORD not in output


def test_serve_database_unreachable_at_start(tmp_path):
    port = free_port()
    url = f"postgresql://polygen:{PASSWORD}@127.0.0.1:{port}/polygen"
    result = subprocess.run(
        [sys.executable, "-m", "polygen", "serve", "--port", str(free_port()), "-o", str(site(tmp_path)),
         "-i", str(ROOT / "inventory"), "--db", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=WAIT, check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # after the example's warning that it has no provisioning auth
    said = [ln for ln in result.stderr.splitlines() if not ln.startswith("warning: no provisioning auth: ")]
    assert len(said) == 1 and said[0].startswith(
        f"Error: cannot reach log database postgresql://polygen:***@127.0.0.1:{port}/polygen: connection failed: ")
    assert PASSWORD not in result.stdout + result.stderr


async def test_store_writers_in_parallel_then_all_closed(pg_cluster, pg_url):
    """On PostgreSQL the sidecar stores with several connections at once; closing closes them all,
    and the health check's own connection too."""
    from polygen.sidecar.store import PG_WRITERS, StoreWriter

    def connections() -> int:
        with pg_cluster.admin() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'polygen'"
                                ).fetchone()[0]

    writer = await StoreWriter(pg_url).open()
    assert writer.writers == PG_WRITERS > 1
    stored = await asyncio.gather(*(writer.store_upload(mac, "app", log_body(mac, 2), None, None)
                                    for mac in MACS for _ in range(3)))  # each phone's upload three times
    assert sorted(s.lines for s in stored) == [0] * (2 * len(MACS)) + [2 * LINES] * len(MACS)
    assert 1 < connections() <= PG_WRITERS
    assert await writer.counts() == (3 * len(MACS), 2 * LINES * len(MACS))
    assert await writer.ping() is True  # on the health check's own connection
    assert 2 < connections() <= PG_WRITERS + 1
    await writer.close()
    # the server ends a backend shortly after its client said goodbye: wait for that, bounded
    deadline = time.monotonic() + WAIT
    while connections() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert connections() == 0
