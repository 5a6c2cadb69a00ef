"""What one upload and one slow client may cost the sidecar (SECURITY.md, "Uploads are bounded"
and "Slow clients").

In process: the line limits (per upload, per MAC per hour, for known and for accepted unknown
MACs), blank lines, the body deadline, and /healthz while the writers are busy. Against the real
server (``python -m polygen serve`` on a loopback port): a MAC flooding with megabyte bodies next
to a phone uploading and a health check, and a thousand idle sockets next to a normal request.
Both print a ``FIGURE`` line that ``make hardening`` reports. The tests that store run on both
log databases (the ``db`` fixture: a SQLite path or a new PostgreSQL database's URL).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from polygen.logstore import CUT_MODULE
from polygen.sidecar import SidecarConfig, create_app, keys
from tests.test_fuzz_sidecar import ServeLikeServer
from tests.test_logstore import db, db_path, raw  # noqa: F401 (db, db_path: fixtures)
from tests.test_sidecar import (
    ROOT,
    Server,
    log_body,
    make_generation,
    point_out,
    site,  # noqa: F401 (a fixture)
)
from tests.test_sidecar_security import FakeClock, serve_configs

MAC = "0004f2abcdef"
MAC2 = "64167f000410"
STRANGER = "0004f2999999"  # not in the build
MiB = 1 << 20


def make_config(site: Path, db: Path | str, **kw) -> SidecarConfig:
    return SidecarConfig(out=site / "out", db=db, **kw)


def lines_of(db: Path | str, mac: str) -> list[tuple[int, str | None, str]]:
    return raw(db, f"SELECT line_no, module, text FROM log_lines WHERE mac = '{mac}' ORDER BY id")


def counts(db: Path | str) -> tuple[int, int]:
    ((uploads, lines),) = raw(db, "SELECT (SELECT count(*) FROM uploads), (SELECT count(*) FROM log_lines)")
    return uploads, lines


def numbered(first: int, last: int) -> bytes:
    return b"".join(f"line {i}\n".encode() for i in range(first, last + 1))


# ---------------------------------------------------------------------------- lines per upload
async def test_an_upload_over_its_line_cap_is_cut_with_a_marker(aiohttp_client, site, db):
    """The first max_upload_lines lines are stored, then one marker row; 201 (the phone must not
    retry at once), and the rest is stored when the phone sends its growing file again."""
    config = make_config(site, db, max_upload_lines=5)
    client = await aiohttp_client(create_app(config))
    body = numbered(1, 8)
    r = await client.put(f"/logs/{MAC}-app.log", data=body)
    assert r.status == 201
    assert await r.json() == {"upload_id": 1, "lines": 5, "skipped_bytes": 0,
                              "not_stored_from_line": 6, "not_stored_bytes": len(numbered(6, 8))}
    stored = lines_of(config.db, MAC)
    assert stored[:5] == [(i, None, f"line {i}") for i in range(1, 6)]
    assert stored[5][:2] == (6, CUT_MODULE)
    assert stored[5][2] == ("[polygen] lines 6 and on (21 bytes) not stored: this upload went over its limit "
                            "of 5 lines; they are stored when the phone sends them again")
    # the phone sends its file again, grown by two lines: the rest, then the new lines
    r = await client.put(f"/logs/{MAC}-app.log", data=body + numbered(9, 10))
    assert (r.status, (await r.json())["lines"]) == (201, 5)
    assert [t for n, m, t in lines_of(config.db, MAC) if m != CUT_MODULE] == [f"line {i}" for i in range(1, 11)]


async def test_blank_lines_are_not_stored(aiohttp_client, site, db):
    """A megabyte of newlines stores nothing (it used to be a million rows); blank lines between
    text keep their numbers."""
    config = make_config(site, db)
    client = await aiohttp_client(create_app(config))
    assert (await client.put(f"/logs/{MAC}-app.log", data=b"\n" * (MiB - 1))).status == 204
    assert (await client.put(f"/logs/{MAC}-boot.log", data=b" \r\n" * (MiB // 3))).status == 204
    assert counts(config.db) == (2, 0)
    r = await client.put(f"/logs/{MAC2}-app.log", data=b"one\n\n\t\nfour\n")
    assert (r.status, (await r.json())["lines"]) == (201, 2)
    assert lines_of(config.db, MAC2) == [(1, None, "one"), (4, None, "four")]


# ---------------------------------------------------------------------------- lines per MAC
@pytest.mark.parametrize("policy", ["404", "accept"])
async def test_line_limit_per_mac(aiohttp_client, site, db, policy):
    """Each MAC may store line_limit lines per hour; then 429 before the body is read, nothing
    stored. --unknown-mac accept gets the same limits for every MAC it accepts."""
    config = make_config(site, db, line_limit=6, unknown_mac=policy)
    app = create_app(config)
    clock = FakeClock()
    app[keys.GUARD].lines.clock = clock
    client = await aiohttp_client(app)
    mac = MAC if policy == "404" else STRANGER
    r = await client.put(f"/logs/{mac}-app.log", data=numbered(1, 4))
    assert (r.status, (await r.json())["lines"]) == (201, 4)
    r = await client.put(f"/logs/{mac}-boot.log", data=numbered(1, 4))  # both kinds share the budget
    answer = await r.json()
    assert (r.status, answer["lines"], answer["not_stored_from_line"]) == (201, 2, 3)
    r = await client.put(f"/logs/{mac}-app.log", data=numbered(5, 6))
    assert r.status == 429
    assert r.headers["Retry-After"] == "600"  # one line back every 3600 / 6 s
    assert await r.json() == {"error": {"status": 429, "message": f"too many log lines from {mac}: slow down"}}
    assert counts(config.db) == (2, 4 + 2 + 1)  # the refused upload left nothing, not even a row
    assert (await client.put(f"/logs/{MAC2}-app.log", data=numbered(1, 6))).status == 201  # another phone
    clock.now += 1200
    r = await client.put(f"/logs/{mac}-app.log", data=numbered(1, 4) + numbered(5, 6))
    assert (r.status, (await r.json())["lines"]) == (201, 2)


async def test_concurrent_uploads_of_one_mac_share_its_budget(aiohttp_client, site, db):
    """Uploads waiting for the writers at the same time cannot store more than the budget."""
    config = make_config(site, db, line_limit=50, max_upload_lines=20)
    client = await aiohttp_client(create_app(config))

    async def upload(n):
        r = await client.put(f"/logs/{MAC}-app.log", data=numbered(100 * n, 100 * n + 29))
        return r.status

    statuses = await asyncio.gather(*(upload(n) for n in range(8)))
    stored = [t for _, m, t in lines_of(config.db, MAC) if m != CUT_MODULE]
    assert len(stored) == 50
    assert statuses.count(201) >= 3 and set(statuses) <= {201, 429}


# ---------------------------------------------------------------------------- slow bodies
async def test_an_upload_body_that_trickles_gets_408_and_stores_nothing(aiohttp_client, site, tmp_path):
    config = make_config(site, tmp_path / "logs.db", body_timeout=0.5)
    client = await aiohttp_client(ServeLikeServer(create_app(config)))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"PUT /logs/{MAC}-app.log HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nline 1\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 408 ")
    writer.close()
    await writer.wait_closed()
    assert counts(config.db) == (0, 0)


# ---------------------------------------------------------------------------- health
async def test_healthz_does_not_queue_behind_the_writers(aiohttp_client, site, db):
    """/healthz asks the database on a reader of its own: with every writer thread busy (held
    here until the test lets go: SQLite's one, PostgreSQL's four), it still answers."""
    client = await aiohttp_client(create_app(make_config(site, db)))
    writer = client.app[keys.STORE]
    release = threading.Event()
    loop = asyncio.get_running_loop()
    busy = [loop.run_in_executor(writer._executor, release.wait, 30) for _ in range(writer.writers)]
    try:
        r = await asyncio.wait_for(client.get("/healthz"), 10)
        assert (r.status, (await r.json())["db"]) == (200, True)
    finally:
        release.set()
        await asyncio.gather(*busy)


# ---------------------------------------------------------------------------- the real server
FLOOD_SECONDS = 3.0
FLOODERS = 3
UPLOAD_LIMIT = SidecarConfig(out=Path("out"), db=Path("db")).upload_limit


async def test_a_flooding_mac_does_not_hold_up_other_phones_or_healthz(tmp_path, db, capsys):
    """One MAC sends megabyte bodies (newlines, one-character lines, log lines) from three
    connections at once for a few seconds; meanwhile another phone uploads and /healthz is asked,
    over and over. With the default limits each of those answers in under a second, and the
    flooder stores at most its hourly line budget."""
    flooder, phone = "0004f2f10000", "0004f2000001"
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001", macs=(flooder, phone)))
    bodies = [b"\n" * MiB, b"x\n" * (MiB // 2), log_body(1, 30000)[:MiB]]
    statuses: Counter = Counter()
    latency: dict[str, list[float]] = {"healthz": [], "upload": []}
    server = Server(tmp_path, base / "out", db, ROOT / "inventory")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            await server.wait_ready(session)
            deadline = time.monotonic() + FLOOD_SECONDS

            async def flood(k: int) -> None:
                for n in range(200):  # bounded in count and in time
                    if time.monotonic() > deadline:
                        return
                    async with session.put(f"{server.url}/logs/{flooder}-app.log", data=bodies[(k + n) % 3]) as r:
                        await r.read()
                        statuses[r.status] += 1

            async def probe() -> None:
                body = b""
                for n in range(200):
                    if n >= 5 and time.monotonic() > deadline:
                        return
                    t0 = time.monotonic()
                    async with session.get(f"{server.url}/healthz") as r:
                        assert r.status == 200, await r.text()
                    latency["healthz"].append(time.monotonic() - t0)
                    if n % 2 or n >= 2 * (UPLOAD_LIMIT - 5):  # a phone's pace, under its own upload limit
                        await asyncio.sleep(0.05)
                        continue
                    body += log_body(n + 1, 2)  # the whole growing file, as a phone sends it
                    t0 = time.monotonic()
                    async with session.put(f"{server.url}/logs/{phone}-app.log", data=body) as r:
                        assert r.status == 201, await r.text()
                    latency["upload"].append(time.monotonic() - t0)
                    await asyncio.sleep(0.05)

            started = time.monotonic()
            await asyncio.gather(probe(), *(flood(k) for k in range(FLOODERS)))
            elapsed = time.monotonic() - started
    finally:
        assert server.stop() == 0
    flooded = sum(1 for _, module, _ in lines_of(db, flooder) if module != CUT_MODULE)
    phone_lines = len(lines_of(db, phone))
    worst = {k: max(v) for k, v in latency.items()}
    with capsys.disabled():
        print(f"\nFIGURE flood db={'postgresql' if isinstance(db, str) else 'sqlite'} uploads={sum(statuses.values())} seconds={FLOOD_SECONDS:g} "
              + " ".join(f"status_{s}={n}" for s, n in sorted(statuses.items()))
              + f" flooder_lines_stored={flooded} probes={len(latency['healthz'])}"
              + "".join(f" {k}_median_ms={statistics.median(v) * 1000:.0f} {k}_max_ms={worst[k] * 1000:.0f}"
                        for k, v in latency.items()))
    assert phone_lines == 2 * len(latency["upload"])  # every line of the other phone, once
    budget = SidecarConfig(out=base, db=db).line_limit  # an hour's worth, refilled as the hour goes
    assert flooded <= budget + budget * (elapsed + 1) / 3600
    assert worst["healthz"] < 1.0 and worst["upload"] < 1.0, worst


SLOW_SOCKETS = 1000
TRICKLERS = 10
HEADER_TIMEOUT = 3.0


def _enough_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"ulimit -n allows {hard} open files; the test needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_a_thousand_idle_sockets_do_not_stop_a_normal_request(tmp_path, capsys):
    """Slowloris: a thousand sockets that send half a request head and wait (ten of them trickle
    a header byte now and then). A normal health check and upload still answer at once, and the
    server closes every one of those sockets after --header-timeout, not before."""
    _enough_open_files(SLOW_SOCKETS + 200)
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001"))
    server = Server(tmp_path, base / "out", tmp_path / "logs.db", ROOT / "inventory",
                    "--header-timeout", str(HEADER_TIMEOUT))
    host, port = "127.0.0.1", server.port
    sockets: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await server.wait_ready(session)

            async def open_one() -> None:
                t0 = time.monotonic()
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                sockets.append((t0, reader, writer))

            for _ in range(SLOW_SOCKETS // 100):  # in batches: the listen backlog is finite
                await asyncio.gather(*(open_one() for _ in range(100)))

            async def trickle(writer: asyncio.StreamWriter) -> None:
                for _ in range(int(HEADER_TIMEOUT * 4)):
                    if writer.is_closing():
                        return
                    writer.write(b"X")
                    await asyncio.sleep(0.25)

            tricklers = [asyncio.create_task(trickle(w)) for _, _, w in sockets[:TRICKLERS]]
            t0 = time.monotonic()
            async with session.get(f"{server.url}/healthz") as r:
                assert r.status == 200
            healthz = time.monotonic() - t0
            t0 = time.monotonic()
            async with session.put(f"{server.url}/logs/{MAC}-app.log", data=b"hello\n") as r:
                assert r.status == 201
            upload = time.monotonic() - t0

            async def closed_after(t0: float, reader: asyncio.StreamReader) -> float:
                try:
                    await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 10)
                except (ConnectionError, asyncio.TimeoutError):
                    pass
                return time.monotonic() - t0 if reader.at_eof() else float("inf")

            lifetimes = await asyncio.gather(*(closed_after(t0, r) for t0, r, _ in sockets))
            for task in tricklers:
                task.cancel()
            await asyncio.gather(*tricklers, return_exceptions=True)
    finally:
        for _, _, w in sockets:
            w.close()
        assert server.stop() == 0
    still_open = sum(1 for t in lifetimes if t == float("inf"))
    with capsys.disabled():
        print(f"\nFIGURE slowloris sockets={len(sockets)} tricklers={TRICKLERS} header_timeout_s={HEADER_TIMEOUT:g}"
              f" healthz_ms={healthz * 1000:.0f} upload_ms={upload * 1000:.0f} still_open={still_open}"
              f" closed_after_s_min={min(lifetimes):.1f} closed_after_s_max={max(lifetimes):.1f}")
    assert healthz < 1.0 and upload < 1.0
    assert still_open == 0
    assert min(lifetimes) >= HEADER_TIMEOUT * 0.8  # closed after the timeout, not before


# ---------------------------------------------------------------------------- configuration
LIMIT_OPTIONS = {  # option -> (SidecarConfig field, environment variable, a value to set)
    "--max-upload-lines": ("max_upload_lines", "POLYGEN_SERVE_MAX_UPLOAD_LINES", "50"),
    "--line-limit": ("line_limit", "POLYGEN_SERVE_LINE_LIMIT", "70"),
    "--header-timeout": ("header_timeout", "POLYGEN_SERVE_HEADER_TIMEOUT", "2.5"),
    "--body-timeout": ("body_timeout", "POLYGEN_SERVE_BODY_TIMEOUT", "9"),
}


def test_serve_limit_options_and_envvars(monkeypatch, tmp_path):
    """Each limit comes from its option or its POLYGEN_SERVE_* variable; the defaults agree."""
    from polygen.cli import cli

    runner, args, seen = serve_configs(monkeypatch, tmp_path)
    assert runner.invoke(cli, args, catch_exceptions=False).exit_code == 0
    default = SidecarConfig(out=tmp_path, db=tmp_path / "x.db")
    for field, _, _ in LIMIT_OPTIONS.values():
        assert getattr(seen[-1], field) == getattr(default, field), field
    for option, (field, env, value) in LIMIT_OPTIONS.items():
        assert runner.invoke(cli, args + [option, value]).exit_code == 0
        assert getattr(seen[-1], field) == type(getattr(default, field))(value)
        assert runner.invoke(cli, args, env={env: value}).exit_code == 0
        assert getattr(seen[-1], field) == type(getattr(default, field))(value)
        result = runner.invoke(cli, args + [option, "-1"])
        assert result.exit_code == 2 and option in result.output
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert all(env in help_text for _, env, _ in LIMIT_OPTIONS.values())


def test_limit_validation(tmp_path):
    from polygen.errors import SidecarConfigError

    for kw, message in (({"line_limit": -1}, "rate limits must be 0"), ({"max_upload_lines": -1}, "rate limits"),
                        ({"line_window": 0}, "windows must be a positive"),
                        ({"header_timeout": 0}, "timeouts must be a positive"),
                        ({"body_timeout": -1}, "timeouts must be a positive")):
        with pytest.raises(SidecarConfigError, match=message):
            SidecarConfig(out=tmp_path, db=tmp_path / "x.db", **kw)


def test_readme_table_of_limits_matches_serve():
    """README's table of serve's limits names each option's real variable and default."""
    import re

    from polygen.cli import cli

    params = {p.opts[0]: p for p in cli.commands["serve"].params if p.opts}
    rows = re.findall(r"^\| `(--[a-z-]+)` \| `(POLYGEN_[A-Z_]+)` \| ([0-9.]+) \|", (ROOT / "README.md").read_text(),
                      re.MULTILINE)
    assert {option for option, _, _ in rows} >= set(LIMIT_OPTIONS) | {"--max-upload", "--upload-limit"}
    for option, env, default in rows:
        assert params[option].envvar == env, option
        assert float(params[option].default) == float(default), option
