"""Faults while serving (issue 6): ``kill -9`` of ``polygen serve`` while many phones upload, and
``serve --watch`` under an editor's save patterns.

* **kill -9.** Each trial starts ``polygen serve`` (a subprocess on a loopback port), lets many
  phones upload concurrently (half re-send their growing file, half send only the new lines; every
  line carries a unique marker), kills the server with SIGKILL after a random number of
  acknowledgements, and restarts it. Then: ``PRAGMA integrity_check`` is ok, every upload that got
  a 2xx is stored exactly once, no line is stored twice; and once the phones re-send what was not
  acknowledged (as phones do), every line is stored exactly once. ``POLYGEN_FAULT_TRIALS`` sets the
  number of trials (default 20; ``make hardening`` runs more).
* **Watch.** Write in place, write a temporary file and rename it over, delete then create, and a
  half-saved YAML followed by the full file: a failed build keeps the last good one served, the
  next good one is served without a restart. Driven by the builds' results (a queue with
  timeouts), never by sleeps.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from polygen.errors import InventoryError
from polygen.sidecar import SidecarConfig, create_app
from tests.test_sidecar import RecordingBuild, free_port, make_generation, point_out

ROOT = Path(__file__).resolve().parents[1]
TRIALS = int(os.environ.get("POLYGEN_FAULT_TRIALS", "20"))
PHONES = 24
UPLOADS_PER_PHONE = 4
LINES_PER_UPLOAD = 60
WAIT = 20.0  # upper bound for something that must happen


# ---------------------------------------------------------------------------- the server
class Serve:
    """``python -m polygen serve`` on a loopback port; limits off (the phones here are busy)."""

    def __init__(self, cwd: Path, out: Path, db: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.out"
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "polygen", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "-o", str(out), "--db", str(db), "-i", str(ROOT / "inventory"), "--no-watch",
             "--miss-limit", "0", "--upload-limit", "0", "--shutdown-timeout", "5"],
            cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT,
        )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                async with session.get(self.url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.02)  # polling for the port to open, with a deadline
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT)
        self._fh.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._fh.close()


# ---------------------------------------------------------------------------- phones
class Phone:
    """One phone's uploads in one trial: the bodies it sends, and which were acknowledged."""

    def __init__(self, trial: int, n: int, mac: str):
        self.mac = mac
        self.growing = n % 2 == 0  # re-sends the whole growing file; else only the new lines
        pieces = []
        for u in range(UPLOADS_PER_PHONE):
            lines = [f"{u:06d}.{i:03d}|app1 |2|00|T{trial}P{n}U{u}L{i}" for i in range(LINES_PER_UPLOAD)]
            pieces.append(("\n".join(lines) + "\n").encode())
        self.pieces = pieces
        self.bodies = ([b"".join(pieces[: u + 1]) for u in range(len(pieces))] if self.growing else pieces)
        self.acked: list[int] = []
        self.next = 0  # the first upload not acknowledged

    def lines(self, u: int) -> list[str]:
        return [line.split("|", 4)[4] for line in self.pieces[u].decode().splitlines()]

    async def run(self, session: aiohttp.ClientSession, url: str, on_ack) -> None:
        while self.next < len(self.bodies):
            u = self.next
            try:
                async with session.put(f"{url}/logs/{self.mac}-app.log", data=self.bodies[u]) as r:
                    await r.read()
                    ok = 200 <= r.status < 300
            except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                return  # the server is gone: the phone tries again later
            if not ok:
                raise AssertionError(f"{self.mac} upload {u}: status {r.status}")
            self.acked.append(u)
            self.next += 1
            on_ack()


def line_counts(db: Path, trial: int) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT text, count(*) FROM log_lines WHERE text LIKE ? GROUP BY text",
                                 (f"T{trial}P%",)).fetchall())
    finally:
        conn.close()


def integrity(db: Path) -> tuple[str, list]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("PRAGMA integrity_check").fetchone()[0],
                conn.execute("PRAGMA foreign_key_check").fetchall())
    finally:
        conn.close()


async def test_kill_9_during_uploads_loses_and_duplicates_nothing(tmp_path):
    macs = [f"0004f2{i:06x}" for i in range(PHONES)]
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001", macs=macs))
    db = tmp_path / "logs.db"
    rng = random.Random(6)
    figures = {"trials": 0, "acked": 0, "unacked": 0, "committed_unacked": 0, "kills_before_first_ack": 0}
    total = PHONES * UPLOADS_PER_PHONE
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        server = Serve(tmp_path, base / "out", db)
        try:
            await server.ready(session)
            for trial in range(TRIALS):
                phones = [Phone(trial, n, mac) for n, mac in enumerate(macs)]
                kill_after = rng.randrange(0, total)
                acks = 0
                enough = asyncio.Event()
                if kill_after == 0:
                    enough.set()
                    figures["kills_before_first_ack"] += 1

                def on_ack():
                    nonlocal acks
                    acks += 1
                    if acks >= kill_after:  # noqa: B023 (this trial's callback)
                        enough.set()  # noqa: B023

                tasks = [asyncio.create_task(p.run(session, server.url, on_ack)) for p in phones]
                done_all = asyncio.ensure_future(asyncio.gather(*tasks))
                await asyncio.wait([done_all, asyncio.ensure_future(enough.wait())], timeout=WAIT,
                                   return_when=asyncio.FIRST_COMPLETED)
                assert enough.is_set() or done_all.done(), "the uploads stalled"
                server.kill9()
                await asyncio.wait_for(done_all, WAIT)  # every phone sees the server vanish

                server = Serve(tmp_path, base / "out", db)
                await server.ready(session)
                assert integrity(db) == ("ok", []), f"trial {trial}"
                counts = line_counts(db, trial)
                assert [t for t, c in counts.items() if c > 1] == [], f"trial {trial}: duplicated lines"
                for p in phones:
                    for u in p.acked:
                        missing = [t for t in p.lines(u) if counts.get(t) != 1]
                        assert missing == [], f"trial {trial}: acknowledged upload {p.mac}/{u} lost lines"
                    # an upload the server stored but could not acknowledge before it died
                    for u in range(p.next, len(p.bodies)):
                        if counts.get(p.lines(u)[0]) == 1:
                            figures["committed_unacked"] += 1
                figures["acked"] += sum(len(p.acked) for p in phones)
                figures["unacked"] += sum(len(p.bodies) - p.next for p in phones)

                # the phones try again: afterwards every line is there exactly once
                await asyncio.gather(*(p.run(session, server.url, lambda: None) for p in phones))
                assert all(p.next == len(p.bodies) for p in phones)
                counts = line_counts(db, trial)
                expected = {t for p in phones for u in range(len(p.bodies)) for t in p.lines(u)}
                assert set(counts) == expected and set(counts.values()) == {1}, f"trial {trial}"
                figures["trials"] += 1
        finally:
            assert server.stop() == 0
    assert integrity(db) == ("ok", [])
    print(f"\nFIGURE serve-kill trials={figures['trials']} acked_uploads={figures['acked']} "
          f"unacked_uploads={figures['unacked']} stored_but_unacked={figures['committed_unacked']} "
          f"kills_before_first_ack={figures['kills_before_first_ack']} failures=0")
    assert figures["trials"] == TRIALS >= 1
    assert figures["unacked"] > 0  # the kills really landed while phones were uploading


# ---------------------------------------------------------------------------- watch and editors
NEW_PHONE = '  - mac: 00:04:f2:00:{n:02x}:00\n    model: VVX500\n    lines: ["1002"]\n'


def new_mac(n: int) -> str:
    return f"0004f200{n:02x}00"


@pytest.fixture
async def watched(aiohttp_client, build_opts, tmp_path):
    """serve --watch on a copy of the example inventory; yields (client, phones.yaml, next_result)."""
    from polygen.watch import watch_paths

    exts = build_opts.inventory / "extensions.yaml"  # the new phones share line 1002 with the IP 331
    exts.write_text(exts.read_text().replace('secret: "s3cret-1002"\n', 'secret: "s3cret-1002"\n    shared: true\n'))
    rebuild = RecordingBuild(build_opts, WAIT)
    next_result, results = rebuild.next, rebuild.results
    paths, ignore = watch_paths(build_opts)
    config = SidecarConfig(out=build_opts.out, db=tmp_path / "logs.db", rebuild=rebuild, watch_paths=tuple(paths),
                           watch_ignore=tuple(ignore), quiet_period=0.2, miss_limit=0)
    client = await aiohttp_client(create_app(config))
    first = await next_result()
    assert first.generation == "g000001"
    yield client, build_opts.inventory / "phones.yaml", next_result, first, results


async def served(client) -> tuple[str, int]:
    health = await (await client.get("/healthz")).json()
    return health["generation"], health["phones"]


def write_in_place(path: Path, text: str) -> None:
    with open(path, "r+", encoding="utf-8") as f:  # truncate and rewrite the same inode
        f.seek(0)
        f.truncate()
        f.write(text)


def write_and_rename(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def delete_then_create(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


SAVES = [write_in_place, write_and_rename, delete_then_create]


async def test_watch_survives_editor_save_patterns(watched):
    client, phones, next_result, first, results = watched
    text = phones.read_text()
    expected_phones = first.phones
    for n, save in enumerate(SAVES, start=1):
        generation, _ = await served(client)
        text += NEW_PHONE.format(n=n)
        expected_phones += 1
        save(phones, text)
        # one or more builds follow; each good one carries every phone (never a partial file)
        while True:
            result = await next_result()
            if isinstance(result, Exception):
                assert await served(client) == (generation, expected_phones - 1), save.__name__
                continue
            assert result.phones == expected_phones, (save.__name__, result)
            break
        assert await served(client) == (result.generation, expected_phones), save.__name__
        r = await client.get(f"/{new_mac(n)}-phone.cfg")
        assert r.status == 200, save.__name__
    assert results.empty()


@pytest.mark.parametrize("cut", ["inside a quoted string", "after a mapping key", "inside a flow list"])
async def test_watch_half_saved_yaml_keeps_the_last_good_build(watched, cut):
    """A save cut off in the middle: the build fails, the last good build is served (same
    generation, same bytes); the full file then builds and is served."""
    client, phones, next_result, first, results = watched
    full = phones.read_text() + NEW_PHONE.format(n=9)
    marker = {"inside a quoted string": '"10', "after a mapping key": "    model:",
              "inside a flow list": 'lines: ["1002"'}[cut]
    half = full[: full.rindex(marker) + len(marker)]
    known = "64167f000410"
    before = await (await client.get(f"/{known}-phone.cfg")).read()
    generation = (await served(client))[0]

    write_in_place(phones, half)
    result = await next_result()
    assert isinstance(result, InventoryError), result
    assert await served(client) == (generation, first.phones)
    r = await client.get(f"/{known}-phone.cfg")
    assert (r.status, await r.read()) == (200, before)
    assert (await client.get(f"/{new_mac(9)}-phone.cfg")).status == 404

    write_in_place(phones, full)
    result = await next_result()
    assert not isinstance(result, Exception), result
    assert await served(client) == (result.generation, first.phones + 1)
    assert result.generation != generation
    assert (await client.get(f"/{new_mac(9)}-phone.cfg")).status == 200


@pytest.mark.xfail(reason="known limitation (SECURITY.md): a save cut at a line boundary is a valid, "
                          "smaller inventory; the watch builds and serves it until the rest arrives",
                   strict=True)
async def test_watch_half_saved_at_a_line_boundary(watched):
    client, phones, next_result, first, results = watched
    text = phones.read_text()
    write_in_place(phones, text[: text.index("  - mac: 64:16:7f:00:04:10")])
    result = await next_result()
    assert isinstance(result, Exception), f"a half-saved file was built: {result}"
