"""The sidecar: dispatch by User-Agent, log uploads, refusals, static serving, health, and the real
server in a subprocess (concurrent uploads, SIGTERM with an upload in flight, restart)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from polygen.build import BuildOptions
from polygen.build import run as build
from polygen.errors import SidecarConfigError
from polygen.logstore import LogStore
from polygen.sidecar import SidecarConfig, create_app
from polygen.sidecar.handlers import UPLOAD_RE, check_raw_path
from polygen.useragent import parse_user_agent

from .conftest import TEMPLATES, clean_env, sample_user_agents

ROOT = Path(__file__).resolve().parents[1]
MAC = "0004f2abcdef"
MAC2 = "64167f000410"
UNKNOWN = "0004f2999999"
UA_APP = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"
UA_UPDATER = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"


# Models of the sample UAs that the hand-made build has a bootstrap for; the others get the default.
INDEXED = {"SPIP_335", "SPIP_450", "SPIP_550", "SSIP_6000", "SSIP_5000", "VVX_400", "VVX_101",
           "VVX_500", "VVX_450", "VVX_310", "SPIP_670", "Trio_8800", "VVX_410"}


# ---------------------------------------------------------------------------- a hand-made out/
def make_generation(base: Path, name: str, macs=(MAC, MAC2), models=INDEXED, tag: str = "") -> Path:
    """A generation laid out as DESIGN.md says, without running a build."""
    gen = base / ".out.gens" / name
    files: dict[str, bytes] = {
        "000000000000.cfg": f"<APPLICATION default{tag}/>".encode(),
        "site.cfg": b"<polycomConfig site/>",
        "contacts/000000000000-directory.xml": b"<directory><item_list/></directory>",
    }
    index = {"version": 1, "default": "000000000000.cfg", "models": {}}
    for model in sorted(models):
        token = model.replace("_", "")
        files[f"bootstrap/{token}.cfg"] = f"<APPLICATION model={token}{tag}/>".encode()
        index["models"][model] = f"bootstrap/{token}.cfg"
    files["ua-index.json"] = json.dumps(index).encode()
    for mac in macs:
        files[f"{mac}-phone.cfg"] = f"<polycomConfig phone={mac}/>".encode()
    for rel, data in files.items():
        (gen / rel).parent.mkdir(parents=True, exist_ok=True)
        (gen / rel).write_bytes(data)
    # firmware: a symlink out of the generation (listed), one not listed, and an escaping link
    fw = base / "firmware" / "5.9.7"
    fw.mkdir(parents=True, exist_ok=True)
    (fw / "sip.ld").write_bytes(b"\x7fFIRMWARE" * 100)
    (fw / "secret.ld").write_bytes(b"not listed")
    (gen / "firmware" / "5.9.7").mkdir(parents=True)
    (gen / "firmware" / "5.9.7" / "sip.ld").symlink_to(fw / "sip.ld")
    (gen / "firmware" / "5.9.7" / "secret.ld").symlink_to(fw / "secret.ld")
    (base / "outside.txt").write_bytes(b"private")
    (gen / "escape.cfg").symlink_to(base / "outside.txt")
    manifest = {rel: ["k", "sha", len(data), 0o644] for rel, data in files.items()}
    manifest["firmware/5.9.7/sip.ld"] = ["k", None, 900, 0o644]
    (gen / ".polygen-manifest.json").write_text(json.dumps({"version": 1, "files": manifest}))
    return gen


def point_out(base: Path, gen: Path) -> None:
    """Swap the out symlink atomically, as the writer does."""
    tmp = base / ".out.swap"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(gen, base))
    os.rename(tmp, base / "out")


@pytest.fixture
def site(tmp_path) -> Path:
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001"))
    return base


@pytest.fixture
def config(site, tmp_path) -> SidecarConfig:
    return SidecarConfig(out=site / "out", db=tmp_path / "logs.db", static=True)


@pytest.fixture
async def client(aiohttp_client, config):
    return await aiohttp_client(create_app(config))


def counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return (conn.execute("SELECT count(*) FROM uploads").fetchone()[0],
                conn.execute("SELECT count(*) FROM log_lines").fetchone()[0])
    finally:
        conn.close()


def rows(db: Path, sql="SELECT mac, kind, line_no, text, level, parsed FROM log_lines ORDER BY id"):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def snapshot(root: Path) -> list[tuple[str, int]]:
    """Every file under root with its size, except the SQLite database files."""
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size)
        for p in root.rglob("*")
        if not p.is_dir() and ".db" not in p.name
    )


async def raw_request(client, method: str, target: str, headers: dict | None = None,
                      body: bytes = b"") -> tuple[int, bytes]:
    """Send a request line exactly as written (no client-side path normalisation)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = f"{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def log_body(start: int, n: int) -> bytes:
    return b"".join(f"0000{i:02d}.000|app1 |{i % 7}|00|line {i}\n".encode() for i in range(start, start + n))


# ---------------------------------------------------------------------------- config / errors
def test_config_validation(tmp_path):
    with pytest.raises(SidecarConfigError, match="unknown_mac must be one of 404, accept"):
        SidecarConfig(out=tmp_path, db=tmp_path / "x.db", unknown_mac="maybe")
    with pytest.raises(SidecarConfigError, match="upload cap"):
        SidecarConfig(out=tmp_path, db=tmp_path / "x.db", max_upload_bytes=0)
    assert SidecarConfig(out=tmp_path, db=tmp_path / "x.db").max_upload_bytes == 1024 * 1024


async def test_error_shape(client):
    """One JSON error shape for every refusal (error text is API)."""
    r = await client.get("/nothing-here.cfg")
    assert r.status == 404
    assert r.content_type == "application/json"
    assert await r.json() == {"error": {"status": 404, "message": "not found"}}
    r = await client.delete("/000000000000.cfg")
    assert r.status == 405
    assert r.headers["Allow"] == "GET,HEAD,PUT"
    assert await r.json() == {"error": {"status": 405, "message": "method DELETE is not allowed"}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("/a?b=1", "query strings are not accepted"),
        ("/%2e%2e/x", "percent-encoded paths are not accepted"),
        ("/a/../b", "'.' and '..' path segments are not accepted"),
        ("/./b", "'.' and '..' path segments are not accepted"),
        ("//b", "empty path segments are not accepted"),
        ("/a b", "the path has characters outside [A-Za-z0-9._-]"),
        ("/a\\b", "the path has characters outside [A-Za-z0-9._-]"),
    ],
)
def test_check_raw_path_refuses(raw, message):
    from aiohttp import web

    with pytest.raises(web.HTTPBadRequest) as info:
        check_raw_path(raw)
    assert info.value.text == message


def test_upload_pattern():
    assert UPLOAD_RE.fullmatch(f"/logs/{MAC}-app.log").groups() == (MAC, "app")
    assert UPLOAD_RE.fullmatch(f"/{MAC}-boot.log").groups() == (MAC, "boot")
    for bad in (f"/logs/{MAC.upper()}-app.log", f"/x/logs/{MAC}-app.log", f"/logs/{MAC}-app.log\n",
                f"/logs/{MAC}-phone.log", f"/logs/{MAC}0-app.log"):
        assert UPLOAD_RE.fullmatch(bad) is None


# ---------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize("ua", sample_user_agents())
async def test_dispatch_every_sample_user_agent(client, ua):
    model = parse_user_agent(ua).model
    expected = (f"<APPLICATION model={model.replace('_', '')}/>" if model in INDEXED
                else "<APPLICATION default/>")
    for path in ("/000000000000.cfg", "/prov/site-a/000000000000.cfg"):
        r = await client.get(path, headers={"User-Agent": ua})
        assert r.status == 200
        assert await r.text() == expected
        assert r.headers["Vary"] == "User-Agent"
        assert r.headers["Cache-Control"] == "no-store"
    r = await client.head("/000000000000.cfg", headers={"User-Agent": ua})
    assert r.status == 200
    assert int(r.headers["Content-Length"]) == len(expected)
    assert await r.read() == b""


@pytest.mark.parametrize("ua", [None, "", "curl/8.5.0", "FileTransport PolycomVVX-VVX_999-UA/5.9.7.4477"])
async def test_dispatch_default(client, ua):
    headers = {"User-Agent": ua} if ua is not None else {"User-Agent": ""}
    r = await client.get("/000000000000.cfg", headers=headers)
    assert (r.status, await r.text()) == (200, "<APPLICATION default/>")


async def test_dispatch_follows_rebuilds(client, site):
    """A new generation (symlink swap) and a rewritten index are used without a restart."""
    ua = {"User-Agent": UA_APP}
    assert await (await client.get("/000000000000.cfg", headers=ua)).text() == "<APPLICATION model=VVX410/>"
    point_out(site, make_generation(site, "g000002", tag=" v2"))
    assert await (await client.get("/000000000000.cfg", headers=ua)).text() == "<APPLICATION model=VVX410 v2/>"
    # the model disappears from the index of the next generation: the default is served
    point_out(site, make_generation(site, "g000003", models={"SPIP_335"}, tag=" v3"))
    assert await (await client.get("/000000000000.cfg", headers=ua)).text() == "<APPLICATION default v3/>"


async def test_dispatch_bad_index_entry_falls_back(client, site):
    gen = site / ".out.gens" / "g000001"
    index = json.loads((gen / "ua-index.json").read_text())
    index["models"]["VVX_410"] = "../outside.txt"
    (gen / "ua-index.json").write_text(json.dumps(index))
    r = await client.get("/000000000000.cfg", headers={"User-Agent": UA_APP})
    assert (r.status, await r.text()) == (200, "<APPLICATION default/>")


async def test_no_build_yet(aiohttp_client, tmp_path):
    app = create_app(SidecarConfig(out=tmp_path / "missing-out", db=tmp_path / "logs.db"))
    client = await aiohttp_client(app)
    r = await client.get("/000000000000.cfg")
    assert r.status == 503
    assert (await r.json())["error"]["message"] == "no build yet: run 'polygen build'"
    r = await client.put(f"/logs/{MAC}-app.log", data=b"x\n")
    assert r.status == 503
    assert counts(tmp_path / "logs.db") == (0, 0)
    r = await client.get("/healthz")
    assert r.status == 503
    assert await r.json() == {"status": "unavailable", "generation": None, "commit": None, "phones": 0,
                                "db": True}


# ---------------------------------------------------------------------------- uploads
async def test_upload_app_and_boot(client, config):
    body = b"011511.006|so   |2|00|soCoreAudioTermChg: a | b\r\nnot a log line\n"
    r = await client.put(f"/logs/{MAC}-app.log", data=body, headers={"User-Agent": UA_APP})
    assert r.status == 201
    assert await r.json() == {"upload_id": 1, "lines": 2, "skipped_bytes": 0}
    r = await client.put(f"/{MAC}-boot.log", data=b"boot line\n", headers={"User-Agent": UA_UPDATER})
    assert r.status == 201
    assert rows(config.db) == [
        (MAC, "app", 1, "soCoreAudioTermChg: a | b", 2, 1),
        (MAC, "app", 2, "not a log line", None, 0),
        (MAC, "boot", 1, "boot line", None, 0),
    ]
    assert rows(config.db, "SELECT kind, fw_version, user_agent, bytes FROM uploads ORDER BY id") == [
        ("app", "5.9.7.4477", UA_APP, len(body)),
        ("boot", "5.9.7.47435", UA_UPDATER, 10),
    ]


async def test_upload_without_user_agent(client, config):
    r = await client.put(f"/logs/{MAC}-app.log", data=b"x\n", headers={"User-Agent": "curl/8"})
    assert r.status == 201
    assert rows(config.db, "SELECT fw_version, user_agent FROM uploads") == [(None, "curl/8")]


async def test_upload_invalid_utf8(client, config):
    r = await client.put(f"/logs/{MAC}-app.log", data=b"caf\xc3\xa9 \xff\xfe\n")
    assert r.status == 201
    assert rows(config.db, "SELECT text FROM log_lines") == [("caf\u00e9 \ufffd\ufffd",)]


async def test_append_mode_whole_file(client, config):
    """The phone re-sends its growing file: every line stored once, numbers continue."""
    body = b""
    for n in range(4):
        body += log_body(n * 3 + 1, 3)
        r = await client.put(f"/logs/{MAC}-app.log", data=body, headers={"User-Agent": UA_APP})
        assert r.status == 201
    r = await client.put(f"/logs/{MAC}-app.log", data=body)  # the same file again
    assert r.status == 204
    stored = rows(config.db, "SELECT line_no, text FROM log_lines ORDER BY id")
    assert stored == [(i, f"line {i}") for i in range(1, 13)]


async def test_append_mode_pieces(client, config):
    """The phone sends only the new lines: every piece stored whole."""
    for n in range(4):
        r = await client.put(f"/logs/{MAC}-app.log", data=log_body(n * 3 + 1, 3))
        assert r.status == 201
    assert [t for (t,) in rows(config.db, "SELECT text FROM log_lines ORDER BY id")] == [
        f"line {i}" for i in range(1, 13)]


async def test_empty_upload(client, config):
    r = await client.put(f"/logs/{MAC}-app.log", data=b"")
    assert r.status == 204
    assert counts(config.db) == (1, 0)


async def test_head_app_log(client):
    for path in (f"/{MAC}-app.log", f"/logs/{MAC}-app.log"):
        r = await client.head(path)
        assert r.status == 200
        assert r.headers["Content-Length"] == "0"
    r = await client.head(f"/logs/{UNKNOWN}-app.log")
    assert r.status == 404


async def test_unknown_mac_accepted_by_policy(aiohttp_client, site, tmp_path):
    config = SidecarConfig(out=site / "out", db=tmp_path / "logs.db", unknown_mac="accept")
    client = await aiohttp_client(create_app(config))
    r = await client.put(f"/logs/{UNKNOWN}-app.log", data=b"x\n")
    assert r.status == 201


async def test_concurrent_uploads(client, config):
    macs = [MAC, MAC2]

    async def upload(i):
        r = await client.put(f"/logs/{macs[i % 2]}-app.log", data=f"piece {i}\n".encode())
        assert r.status == 201

    await asyncio.gather(*(upload(i) for i in range(60)))
    assert counts(config.db) == (60, 60)


# ---------------------------------------------------------------------------- refusals
CHUNKED_BIG = object()
REFUSALS = [
    # (method, raw target, body, expected status, message)
    ("PUT", f"/{MAC}-phone.cfg", b"<x/>", 403,
     "only <mac>-boot.log, <mac>-app.log and overrides/<mac>-phone.cfg, -web.cfg uploads are accepted"),
    # override files: only well-formed ones, of known MACs, named exactly (tests/test_overrides.py)
    ("PUT", f"/overrides/{MAC}-phone.cfg", b"<x/>", 400,
     f"{MAC}-phone.cfg: the root element is <x>, not <PHONE_CONFIG>"),
    ("PUT", f"/overrides/{MAC}-web.cfg", b'<!DOCTYPE x [<!ENTITY a "b">]><PHONE_CONFIG/>', 400,
     f"{MAC}-web.cfg: document type declarations are not accepted"),
    ("PUT", f"/overrides/{MAC}-phone.cfg", b"<PHONE_CONFIG><OVERRIDES a='1'>", 400,
     f"{MAC}-phone.cfg: not well-formed XML (no element found, line 1)"),
    ("PUT", f"/overrides/{UNKNOWN}-phone.cfg", b"<PHONE_CONFIG/>", 404,
     f"unknown phone {UNKNOWN}: not in the inventory"),
    ("PUT", f"/overrides/{MAC}-phone.cfg", b"<PHONE_CONFIG/>" + b" " * 2040, 413, "upload larger than 2048 bytes"),
    ("PUT", f"/overrides/{MAC.upper()}-phone.cfg", b"<PHONE_CONFIG/>", 400,
     "MAC addresses in upload names must be lower-case"),
    ("PUT", f"/overrides/{MAC}-user.cfg", b"<PHONE_CONFIG/>", 403, None),
    ("PUT", f"/overrides/sub/{MAC}-phone.cfg", b"<PHONE_CONFIG/>", 403, None),
    ("PUT", f"/overrides/../{MAC}-phone.cfg", b"<PHONE_CONFIG/>", 400, None),
    ("PUT", f"/{MAC}-web.cfg", b"<PHONE_CONFIG/>", 403, None),
    ("PUT", f"/{MAC}-web.cfg", b"<x/>", 403, None),
    ("PUT", f"/contacts/{MAC}-directory.xml", b"<x/>", 403, None),
    ("PUT", f"/{MAC}-calls.xml", b"<x/>", 403, None),
    ("PUT", "/000000000000.cfg", b"<x/>", 403, None),
    ("PUT", f"/logs/{MAC}-flash.log", b"x", 403, None),
    ("PUT", f"/other/logs/{MAC}-app.log", b"x", 403, None),
    ("PUT", f"/logs/../{MAC}-app.log", b"x", 400, "'.' and '..' path segments are not accepted"),
    ("PUT", f"/logs/%2e%2e/{MAC}-app.log", b"x", 400, "percent-encoded paths are not accepted"),
    ("PUT", "/logs/%30004f2abcdef-app.log", b"x", 400, "percent-encoded paths are not accepted"),
    ("PUT", f"/logs/{MAC.upper()}-app.log", b"x", 400, "MAC addresses in upload names must be lower-case"),
    ("PUT", f"/LOGS/{MAC}-app.log", b"x", 400, "MAC addresses in upload names must be lower-case"),
    ("PUT", f"/logs/{MAC}-app.log?x=1", b"x", 400, "query strings are not accepted"),
    ("PUT", f"/logs//{MAC}-app.log", b"x", 400, "empty path segments are not accepted"),
    ("PUT", f"/logs/{UNKNOWN}-app.log", b"x\n", 404, f"unknown phone {UNKNOWN}: not in the inventory"),
    ("PUT", f"/logs/{MAC}-app.log", b"x" * 2049, 413, "upload larger than 2048 bytes"),
    ("PUT", f"/logs/{MAC}-app.log", CHUNKED_BIG, 413, "upload larger than 2048 bytes"),
    ("POST", f"/logs/{MAC}-app.log", b"x", 405, "method POST is not allowed"),
    ("DELETE", f"/logs/{MAC}-app.log", b"", 405, None),
    ("GET", "/../outside.txt", b"", 400, None),
    ("GET", "/.out.gens/g000001/site.cfg", b"", 404, None),
]


@pytest.mark.parametrize(("method", "target", "body", "status", "message"), REFUSALS,
                         ids=[f"{r[0]} {r[1]} {r[3]}" for r in REFUSALS])
async def test_refusals_write_nothing(aiohttp_client, site, tmp_path, method, target, body, status, message):
    config = SidecarConfig(out=site / "out", db=tmp_path / "logs.db", max_upload_bytes=2048)
    client = await aiohttp_client(create_app(config))
    before = snapshot(tmp_path)
    if body is CHUNKED_BIG:
        async def chunks():
            for _ in range(10):
                yield b"y" * 1000

        r = await client.put(target, data=chunks())
        got_status, got_body = r.status, await r.read()
    else:
        got_status, got_body = await raw_request(client, method, target, body=body)
    assert got_status == status
    error = json.loads(got_body)["error"]
    assert error["status"] == status
    if message is not None:
        assert error["message"] == message
    assert counts(config.db) == (0, 0)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------- static
async def test_static_files(client, site):
    r = await client.get("/site.cfg")
    assert (r.status, await r.read()) == (200, b"<polycomConfig site/>")
    r = await client.get(f"/{MAC}-phone.cfg")
    assert (r.status, await r.read()) == (200, f"<polycomConfig phone={MAC}/>".encode())
    r = await client.head("/site.cfg")
    assert (r.status, r.headers["Content-Length"]) == (200, "21")
    r = await client.get("/firmware/5.9.7/sip.ld")
    assert (r.status, await r.read()) == (200, b"\x7fFIRMWARE" * 100)
    r = await client.get("/bootstrap/VVX410.cfg")
    assert r.status == 200


@pytest.mark.parametrize(
    "path",
    ["/", "/contacts/", "/firmware", "/firmware/5.9.7", "/bootstrap/", "/.polygen-manifest.json",
     "/escape.cfg", "/firmware/5.9.7/secret.ld", f"/{UNKNOWN}-phone.cfg", f"/logs/{MAC}-app.log",
     f"/contacts/{UNKNOWN}-directory.xml", "/outside.txt"],
)
async def test_static_refusals(client, path):
    r = await client.get(path)
    assert r.status == 404
    assert (await r.json())["error"]["status"] == 404


async def test_directory_for_known_macs(client):
    shared = b"<directory><item_list/></directory>"
    for path in (f"/contacts/{MAC}-directory.xml", "/contacts/000000000000-directory.xml"):
        r = await client.get(path)
        assert (r.status, await r.read()) == (200, shared)


async def test_a_phone_with_its_own_directory_gets_it(client, site):
    # the build writes contacts/<mac>-directory.xml for a phone with speed dials (DESIGN.md)
    own = b"<directory><item_list><item><ct>5551000</ct><sd>1</sd></item></item_list></directory>"
    (site / "out" / "contacts" / f"{MAC2}-directory.xml").write_bytes(own)
    r = await client.get(f"/contacts/{MAC2}-directory.xml")
    assert (r.status, await r.read()) == (200, own)
    r = await client.get(f"/contacts/{MAC}-directory.xml")
    assert (r.status, await r.read()) == (200, b"<directory><item_list/></directory>")
    # an unknown MAC gets neither, even if such a file were there
    (site / "out" / "contacts" / f"{UNKNOWN}-directory.xml").write_bytes(own)
    assert (await client.get(f"/contacts/{UNKNOWN}-directory.xml")).status == 404


async def test_static_off(aiohttp_client, site, tmp_path):
    config = SidecarConfig(out=site / "out", db=tmp_path / "logs.db", static=False)
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/site.cfg")).status == 404
    assert (await client.get("/000000000000.cfg")).status == 200
    assert (await client.put(f"/logs/{MAC}-app.log", data=b"x\n")).status == 201


# ---------------------------------------------------------------------------- health, retention
async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok", "generation": "g000001", "commit": None, "phones": 2, "db": True}


async def test_retention_prunes_on_schedule(aiohttp_client, site, tmp_path):
    db = tmp_path / "logs.db"
    with LogStore.open(db) as store:
        store.store_upload(MAC, "app", b"ancient\n", None, None, received_at=1000.0)
    config = SidecarConfig(out=site / "out", db=db, retention=3600, prune_interval=0.05)
    client = await aiohttp_client(create_app(config))
    r = await client.put(f"/logs/{MAC}-app.log", data=b"fresh\n")
    assert r.status == 201
    for _ in range(200):
        if counts(db) == (1, 1):
            break
        await asyncio.sleep(0.02)
    assert rows(db, "SELECT text FROM log_lines") == [("fresh",)]


async def test_database_error_is_reported(tmp_path, site):
    (tmp_path / "bad.db").write_bytes(b"not a database" * 100)
    app = create_app(SidecarConfig(out=site / "out", db=tmp_path / "bad.db"))
    from aiohttp.test_utils import TestServer

    server = TestServer(app)
    with pytest.raises(Exception, match="not a usable log database"):
        await server.start_server()
    await server.close()


# ---------------------------------------------------------------------------- with a real build
async def test_real_build(aiohttp_client, built, tmp_path):
    """The example inventory, built by polygen.build: dispatch, uploads and static files."""
    out = built
    index = json.loads((out / "ua-index.json").read_text())
    client = await aiohttp_client(create_app(SidecarConfig(out=out, db=tmp_path / "logs.db")))
    for ua in sample_user_agents() + [UA_APP]:
        model = parse_user_agent(ua).model
        expected = (out / index["models"].get(model, index["default"])).read_bytes()
        r = await client.get("/000000000000.cfg", headers={"User-Agent": ua})
        assert (r.status, await r.read()) == (200, expected)
    manifest = json.loads((out / ".polygen-manifest.json").read_text())["files"]
    macs = sorted(p[:12] for p in manifest if p.endswith("-phone.cfg"))
    assert macs
    health = await (await client.get("/healthz")).json()
    assert health["phones"] == len(macs)
    for mac in macs:
        r = await client.put(f"/logs/{mac}-boot.log", data=b"000001.000|cfg  |1|00|hello\n",
                             headers={"User-Agent": UA_UPDATER})
        assert r.status == 201
        r = await client.get(f"/contacts/{mac}-directory.xml")
        assert (r.status, await r.read()) == (200, (out / "contacts/000000000000-directory.xml").read_bytes())
    assert counts(tmp_path / "logs.db") == (len(macs), len(macs))
    # every file the manifest lists is served, with its bytes (firmware links included), but
    # the hidden ones (what the sidecar itself reads)
    for rel in manifest:
        r = await client.get("/" + rel)
        if rel == "000000000000.cfg":
            continue
        if rel.startswith("."):
            assert r.status == 404, rel
            continue
        assert r.status == 200, rel
        assert await r.read() == (out / rel).read_bytes(), rel
    assert (await client.get("/.polygen-manifest.json")).status == 404
    assert (await client.put(f"/logs/{UNKNOWN}-app.log", data=b"x\n")).status == 404


# ---------------------------------------------------------------------------- the real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m polygen serve`` in a subprocess, on a loopback port."""

    def __init__(self, cwd: Path, out: Path, db: Path, inventory: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = cwd / f"serve-{self.port}.out"
        self._fh = open(self.stdout, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "polygen", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "-o", str(out), "--db", str(db), "-i", str(inventory), "--no-watch", "--shutdown-timeout", "10", *extra],
            cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stdout.read_text()
            try:
                async with session.get(self.url + "/healthz") as r:
                    return await r.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"server did not start:\n{self.stdout.read_text()}")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._fh.close()


@pytest.fixture
def many_macs_site(tmp_path) -> tuple[Path, list[str]]:
    macs = [f"0004f2{i:06x}" for i in range(40)]
    base = tmp_path / "site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001", macs=macs))
    return base, macs


async def test_real_server_concurrent_uploads_and_restart(many_macs_site, tmp_path):
    base, macs = many_macs_site
    db = tmp_path / "logs.db"
    server = Server(tmp_path, base / "out", db, ROOT / "inventory")
    try:
        async with aiohttp.ClientSession() as session:
            health = await server.wait_ready(session)
            assert health == {"status": "ok", "generation": "g000001", "commit": None, "phones": 40, "db": True}

            async def phone(mac: str) -> None:
                body = b""
                for n in range(5):  # the whole growing file each time
                    body += log_body(n * 4 + 1, 4)
                    async with session.put(f"{server.url}/logs/{mac}-app.log", data=body,
                                           headers={"User-Agent": UA_APP}) as r:
                        assert r.status == 201, await r.text()
                async with session.put(f"{server.url}/{mac}-boot.log", data=b"boot\n",
                                       headers={"User-Agent": UA_UPDATER}) as r:
                    assert r.status == 201

            await asyncio.gather(*(phone(mac) for mac in macs))
            async with session.get(f"{server.url}/000000000000.cfg", headers={"User-Agent": UA_APP}) as r:
                assert await r.text() == "<APPLICATION model=VVX410/>"
    finally:
        assert server.stop() == 0
    log_text = server.stdout.read_text()
    assert f"level=info logger=polygen.access method=PUT path=/logs/{macs[0]}-app.log status=201" in log_text
    assert "logger=polygen.sidecar msg=stopped" in log_text
    assert counts(db) == (40 * 6, 40 * 21)

    # restart: the database is intact and appending continues where it stopped
    server = Server(tmp_path, base / "out", db, ROOT / "inventory")
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
            body = b"".join(log_body(n * 4 + 1, 4) for n in range(5)) + b"after restart\n"
            async with session.put(f"{server.url}/logs/{macs[0]}-app.log", data=body) as r:
                assert (r.status, (await r.json())["lines"]) == (201, 1)
    finally:
        assert server.stop() == 0
    assert counts(db) == (40 * 6 + 1, 40 * 21 + 1)
    with LogStore.open(db) as store:
        got = [(r.line_no, r.text) for r in store.query(mac=macs[0], kind="app", limit=None)]
    assert got == [(i, f"line {i}") for i in range(1, 21)] + [(21, "after restart")]


async def test_real_server_sigterm_finishes_upload_in_flight(many_macs_site, tmp_path):
    base, macs = many_macs_site
    db = tmp_path / "logs.db"
    server = Server(tmp_path, base / "out", db, ROOT / "inventory")
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
            first_sent = asyncio.Event()
            release = asyncio.Event()

            async def slow_body():
                yield b"first line\n"
                first_sent.set()
                await release.wait()
                yield b"second line\n"

            async def upload():
                async with session.put(f"{server.url}/logs/{macs[0]}-app.log", data=slow_body()) as r:
                    return r.status

            task = asyncio.create_task(upload())
            await asyncio.wait_for(first_sent.wait(), 10)
            await asyncio.sleep(0.2)  # let the server start the handler (a real phone's pace)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert server.proc.poll() is None  # still finishing the upload
            release.set()
            assert await asyncio.wait_for(task, 10) == 201
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
    assert rows(db, "SELECT text FROM log_lines ORDER BY id") == [("first line",), ("second line",)]


def serve_once(cwd: Path, host: str, port: int) -> subprocess.CompletedProcess:
    """`polygen serve` of the example with provisioning auth (so it may listen beyond loopback, and
    has nothing to warn about)."""
    import shutil

    inv = cwd / "inventory"
    shutil.copytree(ROOT / "inventory", inv)
    site = inv / "site.yaml"
    site.write_text(site.read_text() + '  provisioning_auth: {user: phones-a, password: "Wq7-first-pass"}\n')
    build(BuildOptions(inv, cwd / "out", TEMPLATES, cwd / "firmware"))
    return subprocess.run(
        [sys.executable, "-m", "polygen", "serve", "--host", host, "--port", str(port), "-o", str(cwd / "out"),
         "--db", str(cwd / "logs.db"), "-i", str(inv)],
        cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def test_a_port_in_use_says_which_and_how_to_pick_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = serve_once(tmp_path, "127.0.0.1", port)
    assert (r.returncode, r.stderr) == (
        1, f"Error: port {port} on 127.0.0.1 is in use; pick another with --port or PORT={port + 1} make run\n")
    assert "Traceback" not in r.stdout


def test_an_address_not_of_this_machine_says_so(tmp_path):
    nonlocal_bind = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")
    if nonlocal_bind.is_file() and nonlocal_bind.read_text().strip() != "0":
        pytest.skip("this machine lets programs listen on addresses it does not have (ip_nonlocal_bind)")
    r = serve_once(tmp_path, "192.0.2.1", free_port())  # TEST-NET-1: never a local address
    assert (r.returncode, r.stderr) == (1, "Error: 192.0.2.1 is not an address of this machine; "
                                           "pick another with --host\n")


# ---------------------------------------------------------------------------- serve --watch, end to end
class RecordingBuild:
    """``make_build(options)`` that also hands each outcome (a result or the exception it raised)
    to the test, which awaits them one by one with ``await next()``."""

    def __init__(self, options, wait: float = 20.0):
        import queue

        from polygen.watch import make_build

        self.build = make_build(options)
        self.results: queue.Queue = queue.Queue()
        self.wait = wait

    def __call__(self):
        try:
            result = self.build()
        except Exception as exc:
            self.results.put(exc)
            raise
        self.results.put(result)
        return result

    async def next(self):
        return await asyncio.to_thread(self.results.get, True, self.wait)


async def test_watch_rebuild_end_to_end(aiohttp_client, build_opts, tmp_path):
    """serve --watch on the example inventory: a broken edit keeps serving the last good build,
    the fix is picked up (new phone may upload, new model's bootstrap) without a restart."""
    from polygen.errors import InventoryError
    from polygen.watch import watch_paths

    rebuild = RecordingBuild(build_opts)
    next_result = rebuild.next
    paths, ignore = watch_paths(build_opts)
    config = SidecarConfig(out=build_opts.out, db=tmp_path / "logs.db", rebuild=rebuild,
                           watch_paths=tuple(paths), watch_ignore=tuple(ignore), quiet_period=0.1)
    client = await aiohttp_client(create_app(config))
    first = await next_result()
    assert first.generation == "g000001"
    new_mac, ua_500 = "0004f2000500", "FileTransport PolycomVVX-VVX_500-UA/5.9.7.4477 Type/Application"
    default = (build_opts.out / "000000000000.cfg").read_bytes()
    assert (await client.put(f"/logs/{new_mac}-app.log", data=b"x\n")).status == 404
    assert await (await client.get("/000000000000.cfg", headers={"User-Agent": ua_500})).read() == default

    phones = build_opts.inventory / "phones.yaml"
    original = phones.read_text()
    phones.write_text(original + "  - mac: 00:04:f2:00:05:00\n    model: VVX5000\n    lines: []\n")
    assert isinstance(await next_result(), InventoryError)
    assert (await (await client.get("/healthz")).json())["generation"] == "g000001"
    assert (await client.put(f"/logs/{new_mac}-app.log", data=b"x\n")).status == 404

    phones.write_text(original + "  - mac: 00:04:f2:00:05:00\n    model: VVX500\n    lines: []\n")
    fixed = await next_result()
    assert fixed.generation == "g000002", fixed
    health = await (await client.get("/healthz")).json()
    assert (health["generation"], health["phones"]) == ("g000002", first.phones + 1)
    assert (await client.put(f"/logs/{new_mac}-app.log", data=b"x\n")).status == 201
    r = await client.get("/000000000000.cfg", headers={"User-Agent": ua_500})
    assert await r.read() == (build_opts.out / "bootstrap" / "VVX500.cfg").read_bytes()


async def healthz_until(client, done, deadline: float = 10.0) -> tuple[int, dict]:
    """/healthz once ``done(body)`` holds (the watcher records an outcome just after the build
    returns), or at the deadline."""
    end = time.monotonic() + deadline
    while True:
        r = await client.get("/healthz")
        body = await r.json()
        if done(body) or time.monotonic() > end:
            return r.status, body
        await asyncio.sleep(0.02)


async def test_healthz_tells_a_failed_or_refused_rebuild(aiohttp_client, build_opts, tmp_path):
    """serve --watch: while the newest inventory does not build (broken, or its rebuild refused
    for turning auth off), /healthz answers 200 "degraded" with the error and the last good build
    is served, auth and all; a good build makes it "ok" again."""
    from polygen.errors import BuildError, InventoryError
    from polygen.watch import watch_paths

    site = build_opts.inventory / "site.yaml"
    auth = '  provisioning_auth: {user: phones-a, password: "Wq7-first-pass"}\n'
    site.write_text(site.read_text() + auth)
    with_auth = site.read_text()
    rebuild = RecordingBuild(build_opts)
    paths, ignore = watch_paths(build_opts)
    config = SidecarConfig(out=build_opts.out, db=tmp_path / "logs.db", rebuild=rebuild,
                           watch_paths=tuple(paths), watch_ignore=tuple(ignore), quiet_period=0.1)
    client = await aiohttp_client(create_app(config))
    assert (await rebuild.next()).generation == "g000001"
    ok = {"status": "ok", "generation": "g000001", "commit": None, "phones": 4, "db": True}
    assert await healthz_until(client, lambda b: True) == (200, ok)

    site.write_text(with_auth.replace(auth, ""))
    assert isinstance(await rebuild.next(), BuildError)
    assert await healthz_until(client, lambda b: b["status"] != "ok") == (200, {
        **ok, "status": "degraded",
        "error": "refusing to turn provisioning auth off in an unattended rebuild (a half-saved site file?); "
                 "the last build stays served. Run `polygen build` to apply it deliberately"})
    assert (await client.get(f"/{MAC2}-phone.cfg")).status == 401

    site.write_text(with_auth.replace("sip_server:", "sip_server: [\n"))
    assert isinstance(await rebuild.next(), InventoryError)
    status, body = await healthz_until(client, lambda b: b.get("error", "").startswith("the inventory has"))
    assert (status, body["status"], body["generation"]) == (200, "degraded", "g000001")
    assert "site.yaml" not in body["error"]  # the count only: the problems stay in the log

    site.write_text(with_auth)
    assert (await rebuild.next()).generation == "g000001"
    assert await healthz_until(client, lambda b: b["status"] == "ok") == (200, ok)

    # refused again, then confirmed by hand: the new generation is the newest inventory built
    site.write_text(with_auth.replace(auth, ""))
    assert isinstance(await rebuild.next(), BuildError)
    assert (await healthz_until(client, lambda b: b["status"] != "ok"))[1]["status"] == "degraded"
    from polygen.build import run

    assert (await asyncio.to_thread(run, build_opts)).generation == "g000002"
    assert await healthz_until(client, lambda b: False, deadline=0) == (200, {**ok, "generation": "g000002"})
    assert (await client.get(f"/{MAC2}-phone.cfg")).status == 200
