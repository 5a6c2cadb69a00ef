"""Fuzzing the sidecar's request handling (issue 6), and properties of the upload-name matcher.

Hypothesis makes raw HTTP requests (random methods; paths with percent-encoding, ``..``, NUL,
unicode, very long; garbage User-Agent, Authorization and X-Real-IP headers; Content-Length lies,
chunked bodies good and bad; binary bodies around and far over the cap) and sends them over a
socket to ``aiohttp_client(create_app(...))``'s server, run as ``polygen serve`` runs it (handlers
not cancelled when a client goes away, the key=value access logger). After every request:

* no 5xx on the wire, no 5xx or exception inside the app, no error logged by polygen;
* no file created, changed or removed anywhere under the test's directory (the out tree, the
  firmware, the files beside them), except the SQLite database files and the overrides directory;
* in the overrides directory, only ``<known MAC>-(phone|web).cfg`` files that are override files
  within the cap, each the body of an accepted upload (no temporary file left behind);
* one ``uploads`` row per 2xx PUT of a log, and every 2xx PUT was a valid log or override name of
  a known MAC (judged by this file's own predicates, not the sidecar's regexes) with valid
  credentials.

The run is bounded by time: ``POLYGEN_FUZZ_SECONDS`` (default 10, shared by the two modes, with
and without provisioning auth); ``make hardening`` gives it more. Each mode prints its figures.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import socket
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from polygen import htpasswd, overrides
from polygen.sidecar import SidecarConfig, create_app, keys
from polygen.sidecar.accesslog import KeyValueAccessLogger
from polygen.sidecar.handlers import UPLOAD_RE
from tests.conftest import sample_user_agents
from tests.test_sidecar import MAC, MAC2, UNKNOWN, make_generation, point_out

FUZZ_SECONDS = float(os.environ.get("POLYGEN_FUZZ_SECONDS", "10"))
ROUND = 100  # examples per Hypothesis run; runs with new seeds follow until the time is up
CAP = 2048  # the upload cap the fuzzed server uses
KNOWN = frozenset({MAC, MAC2})
CREDENTIALS = [("phones-new", "s3cret-new"), ("phones-old", "s3cret-old")]
DB_FILES = {"logs.db", "logs.db-wal", "logs.db-shm", "logs.db-journal"}
HEX = frozenset("0123456789abcdef")


# ---------------------------------------------------------------------------- the oracle
def upload_name(path: str) -> tuple[str, str] | None:
    """(mac, kind) if ``path`` is ``/[logs/]<12 lower-case hex>-(boot|app).log``; else None.

    Written without regular expressions, as the independent judge of UPLOAD_RE.
    """
    if not path.startswith("/"):
        return None
    rest = path[1:]
    if rest.startswith("logs/"):
        rest = rest[len("logs/"):]
    for kind in ("boot", "app"):
        suffix = f"-{kind}.log"
        if rest.endswith(suffix):
            mac = rest[: -len(suffix)]
            if len(mac) == 12 and all(c in HEX for c in mac):
                return mac, kind
    return None


def override_name(path: str) -> tuple[str, str] | None:
    """(mac, kind) if ``path`` is ``/overrides/<12 lower-case hex>-(phone|web).cfg``; else None."""
    rest = path.removeprefix("/overrides/")
    if rest == path:
        return None
    for kind in ("phone", "web"):
        mac = rest.removesuffix(f"-{kind}.cfg")
        if mac != rest and len(mac) == 12 and all(c in HEX for c in mac):
            return mac, kind
    return None


def valid_credentials(header: str | None) -> bool:
    if header is None or not header.startswith("Basic "):
        return False
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except ValueError:
        return False
    return bool(sep) and (user, password) in CREDENTIALS


# ---------------------------------------------------------------------------- strategies
NAMES = [
    f"/logs/{MAC}-app.log", f"/logs/{MAC}-boot.log", f"/{MAC2}-app.log", f"/{MAC2}-boot.log",
    f"/logs/{UNKNOWN}-app.log", f"/logs/{MAC.upper()}-app.log", f"/LOGS/{MAC}-app.log",
    f"/logs/{MAC}-app.log.", f"/logs/{MAC}-app.log/", f"/logs/{MAC}-flash.log", f"/x/logs/{MAC}-app.log",
    "/000000000000.cfg", "/prov/000000000000.cfg", "/bootstrap/VVX410.cfg", "/firmware/5.9.7/sip.ld",
    "/firmware/5.9.7/secret.ld", f"/{MAC}-phone.cfg", f"/{UNKNOWN}-phone.cfg", f"/{MAC}.cfg", "/site.cfg",
    f"/contacts/{MAC}-directory.xml", f"/contacts/{UNKNOWN}-directory.xml", "/.htpasswd",
    "/.polygen-manifest.json", "/escape.cfg", "/outside.txt", "/healthz", "/", "/ua-index.json",
    "/.out.gens/g000001/site.cfg", "/../outside.txt", "/logs/../site.cfg", "/%2e%2e/outside.txt",
    f"/logs/%2e%2e/{MAC}-app.log", f"/logs/{MAC}-app.log?x=1", f"/logs//{MAC}-app.log", "*",
    "http://evil.example/site.cfg", f"http://test/logs/{MAC}-app.log",
    f"/overrides/{MAC.upper()}-phone.cfg", f"/overrides/{MAC}-user.cfg", f"/{MAC}-web.cfg",
    f"/overrides/../{MAC}-phone.cfg", f"/overrides/{MAC}-phone.cfg/", "/overrides/",
]
UPLOADS = [f"/{prefix}{mac}-{kind}.log" for prefix in ("", "logs/") for mac in (MAC, MAC2, UNKNOWN)
           for kind in ("boot", "app")]
OVERRIDE_UPLOADS = [f"/overrides/{mac}-{kind}.cfg" for mac in (MAC, MAC2, UNKNOWN) for kind in ("phone", "web")]
ATOMS = ["logs", "contacts", "firmware", "bootstrap", "5.9.7", "sip.ld", "..", ".", "", "%2e%2e", "%2E",
         "%00", "%2f", "%252e", "\x00", "\u00e9", "\u2603", "\U0001f4de", "\ud800", "a" * 300, "~",
         "000000000000.cfg", f"{MAC}-app.log", f"{MAC}-boot.log", f"{MAC.upper()}-app.log",
         f"{UNKNOWN}-app.log", f"{MAC}-phone.cfg", "site.cfg", ".htpasswd", ".polygen-manifest.json",
         "escape.cfg", "?x=1", "#frag", ";a=b", "\\", " ", "\t", "\r\n", "..\\..", "g000001", ".out.gens",
         "overrides", f"{MAC}-web.cfg", f"{UNKNOWN}-web.cfg"]
SAFE = re.compile(r"[A-Za-z0-9._-]{1,14}")

segments = st.one_of(st.sampled_from(ATOMS), st.text(max_size=16), st.from_regex(SAFE, fullmatch=True))
paths = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES),  # twice: valid and near-valid names deserve a good share
    st.lists(segments, max_size=6).map(lambda segs: "/" + "/".join(segs)),
    st.sampled_from(NAMES).map(lambda p: quote(p, safe="/")).map(lambda p: p.replace("a", "%61", 1)),
    st.sampled_from(NAMES).map(lambda p: "".join(f"%{b:02X}" for b in p.encode())),
    st.text(max_size=80),
    st.integers(1000, 20000).map(lambda n: "/" + "a" * n),
    st.integers(10, 400).map(lambda n: "/" + "../" * n + "etc/passwd"),
)
methods = st.one_of(
    st.sampled_from(["GET", "HEAD", "PUT", "PUT", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE",
                     "CONNECT", "PROPFIND", "get", "put"]),
    st.from_regex(r"[A-Z]{1,12}", fullmatch=True),
    st.text(max_size=8),
)
user_agents = st.one_of(st.none(), st.sampled_from(sample_user_agents()), st.text(max_size=200),
                        st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                        st.integers(1000, 9000).map(lambda n: "PolycomVVX-VVX_410-UA/" + "5." * n))


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


authorizations = st.one_of(
    st.none(),
    st.sampled_from([_basic(f"{u}:{p}".encode()) for u, p in CREDENTIALS]),
    st.sampled_from([_basic(f"{u}:{p}".encode()) for u, p in CREDENTIALS]).map(lambda h: h + "  "),
    st.binary(max_size=60).map(_basic),
    st.text(max_size=60).map(lambda t: "Basic " + t),
    st.text(max_size=60),
    st.sampled_from(["Basic", "Basic ", "Bearer x", "Basic =", _basic(b"phones-new:"), _basic(b":s3cret-new")]),
)
extra_headers = st.lists(
    st.tuples(st.one_of(st.sampled_from(["X-Real-IP", "Content-Type", "Range", "If-Modified-Since",
                                         "Accept-Encoding", "Cookie", "X-Forwarded-For", "Host"]),
                        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True)),
              st.one_of(st.text(max_size=40), st.sampled_from(["192.0.2.1", "::1", "2001:db8::1", "bytes=0-1",
                                                               "bytes=-1", "gzip", "x" * 9000]))),
    max_size=4,
)
log_lines = st.lists(
    st.tuples(st.integers(0, 999999), st.sampled_from(["app1 ", "so   ", "cfg  "]), st.integers(0, 6),
              st.text(max_size=40)).map(lambda t: f"{t[0]:06d}.000|{t[1]}|{t[2]}|00|{t[3]}\n"),
    max_size=8,
).map(lambda lines: "".join(lines).encode("utf-8", "surrogatepass"))
param_names = st.one_of(st.sampled_from(["up.backlight.idleIntensity", "reg.1.auth.password", "x"]),
                        st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
                        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1,
                                max_size=10).filter(lambda t: t[0] not in "0123456789.-"))
override_files = st.one_of(
    st.dictionaries(param_names, st.text(max_size=30), max_size=5).map(overrides.render),
    st.sampled_from([
        b"<PHONE_CONFIG><OVERRIDES/></PHONE_CONFIG>",
        b'<!DOCTYPE a [<!ENTITY b "c">]><PHONE_CONFIG><OVERRIDES x="&b;"/></PHONE_CONFIG>',
        b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><PHONE_CONFIG/>',
        b"<polycomConfig a=\"1\"/>", b"<PHONE_CONFIG a=\"1\"/>", b"<PHONE_CONFIG><OVERRIDES a=\"\x01\"/>",
        "<PHONE_CONFIG><OVERRIDES a=\"\u00e9\u2603\"/></PHONE_CONFIG>".encode("utf-16"),
    ]),
)
bodies = st.one_of(
    st.binary(max_size=300),
    log_lines,
    override_files,
    st.integers(CAP - 3, CAP + 3).map(lambda n: b"y" * n),
    st.integers(CAP + 1, CAP * 8).map(lambda n: b"\xff" * n),
)
framings = st.sampled_from(["exact", "exact", "exact", "none", "short", "long", "huge", "negative",
                            "garbage", "chunked", "badchunk", "twice"])


printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)


@st.composite
def requests(draw):
    """Half the requests are well-formed HTTP (so they reach the handlers with a good share of
    valid uploads), the other half anything at all."""
    if draw(st.booleans()):
        draw(st.one_of(st.sampled_from(UPLOADS), st.sampled_from(UPLOADS), st.sampled_from(NAMES), paths))
        return {
            "method": draw(st.sampled_from(["GET", "HEAD", "PUT", "PUT"])),
            "path": draw(st.one_of(st.sampled_from(UPLOADS), st.sampled_from(UPLOADS), st.sampled_from(NAMES),
                                   paths)),
            "ua": draw(st.one_of(st.sampled_from(sample_user_agents()), printable)),
            "auth": draw(st.one_of(st.sampled_from([_basic(f"{u}:{p}".encode()) for u, p in CREDENTIALS]),
                                   authorizations.filter(lambda a: a is None or a.isprintable()))),
            "headers": draw(st.lists(st.tuples(st.sampled_from(["X-Real-IP", "Content-Type", "Range"]),
                                               st.one_of(printable, st.sampled_from(["192.0.2.9", "::1"]))),
                                     max_size=2)),
            "body": draw(st.one_of(log_lines, log_lines, bodies)),
            "framing": draw(st.sampled_from(["exact", "exact", "exact", "chunked", "huge"])),
        }
    return {
        "method": draw(methods),
        "path": draw(paths),
        "ua": draw(user_agents),
        "auth": draw(authorizations),
        "headers": draw(extra_headers),
        "body": draw(bodies),
        "framing": draw(framings),
    }


@st.composite
def override_requests(draw):
    """Well-formed requests for the override files: valid and near-valid names, override files
    good and bad, and the bodies above."""
    return {
        "method": draw(st.sampled_from(["GET", "HEAD", "PUT", "PUT", "PUT"])),
        "path": draw(st.one_of(st.sampled_from(OVERRIDE_UPLOADS), st.sampled_from(NAMES[-6:]), paths)),
        "ua": draw(st.one_of(st.sampled_from(sample_user_agents()), printable)),
        "auth": draw(st.one_of(st.sampled_from([_basic(f"{u}:{p}".encode()) for u, p in CREDENTIALS]),
                               authorizations.filter(lambda a: a is None or a.isprintable()))),
        "headers": [],
        "body": draw(st.one_of(override_files, override_files, bodies)),
        "framing": draw(st.sampled_from(["exact", "exact", "exact", "chunked", "huge"])),
    }


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def encode_request(req: dict) -> tuple[bytes, bool]:
    """The request's bytes, and whether the body is shorter than announced (the server will wait)."""
    body, framing = req["body"], req["framing"]
    head = [_enc(req["method"]) + b" " + _enc(req["path"]) + b" HTTP/1.1", b"Host: test", b"Connection: close"]
    if req["ua"] is not None:
        head.append(b"User-Agent: " + _enc(req["ua"]))
    if req["auth"] is not None:
        head.append(b"Authorization: " + _enc(req["auth"]))
    for name, value in req["headers"]:
        head.append(_enc(name) + b": " + _enc(value))
    waits = False
    if framing == "exact":
        head.append(b"Content-Length: %d" % len(body))
    elif framing == "short":
        head.append(b"Content-Length: %d" % (len(body) // 2))
    elif framing == "long":
        head.append(b"Content-Length: %d" % (len(body) + 10))
        waits = True
    elif framing == "huge":
        head.append(b"Content-Length: 1000000000000")
        waits = True
    elif framing == "negative":
        head.append(b"Content-Length: -1")
    elif framing == "garbage":
        head.append(b"Content-Length: 12abc")
    elif framing == "twice":
        head += [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)]
    elif framing in ("chunked", "badchunk"):
        head.append(b"Transfer-Encoding: chunked")
        if framing == "chunked":
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:100], body[100:]) if c) + b"0\r\n\r\n"
        else:
            body = b"zz\r\n" + body
            waits = True
    return b"\r\n".join(head) + b"\r\n\r\n" + body, waits


def exchange(port: int, data: bytes, waits: bool) -> bytes:
    """Send, then read until the server closes (or a short while, when it waits for more body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server answered and closed before reading it all (413, 400): fine
        sock.settimeout(0.05 if waits else 10)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if not waits:
                    raise AssertionError("no answer within 10 s") from None
                break
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    return received


# ---------------------------------------------------------------------------- the server
class ServeLikeServer(TestServer):
    """A TestServer configured like `polygen serve`: a client that goes away does not cancel its
    handler (aiohttp's default for AppRunner, not for TestServer), and the key=value access log."""

    async def _make_runner(self, **kwargs):
        kwargs["handler_cancellation"] = False
        kwargs.setdefault("access_log_class", KeyValueAccessLogger)
        kwargs.setdefault("access_log", logging.getLogger("polygen.access"))
        return await super()._make_runner(**kwargs)


class Recorder:
    """Every request the app handled: (method, raw path, status, Authorization); errors logged."""

    def __init__(self):
        self.seen: list[tuple[str, str, int, str | None]] = []
        self.crashes: list[str] = []
        self.errors: list[str] = []

    @web.middleware
    async def middleware(self, request, handler):
        try:
            response = await handler(request)
        except BaseException as exc:  # nothing may escape the app's own error handling
            self.crashes.append(f"{request.method} {request.raw_path!r}: {exc!r}")
            raise
        self.seen.append((request.method, request.raw_path, response.status,
                          request.headers.get("Authorization")))
        return response


class ErrorLog(logging.Handler):
    def __init__(self, recorder: Recorder):
        super().__init__(logging.ERROR)
        self.recorder = recorder

    def emit(self, record):
        self.recorder.errors.append(f"{record.name}: {record.getMessage()}")


OVERRIDES_DIR = "polygen-overrides"  # beside logs.db: the sidecar's default


def tree_state(root: Path) -> dict[str, tuple]:
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if name in DB_FILES or root / OVERRIDES_DIR in (p, p.parent):  # checked on their own
                continue
            st_ = p.lstat()
            state[str(p.relative_to(root))] = (st_.st_mode, st_.st_size, st_.st_mtime_ns, st_.st_ino)
    return state


def db_uploads(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT mac, bytes FROM uploads ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture(params=["open", "auth"])
async def fuzz_target(request, aiohttp_client, tmp_path):
    base = tmp_path / "site"
    base.mkdir()
    gen = make_generation(base, "g000001")
    if request.param == "auth":
        (gen / htpasswd.FILENAME).write_text(htpasswd.render(CREDENTIALS, "fuzz"))
    point_out(base, gen)
    config = SidecarConfig(out=base / "out", db=tmp_path / "logs.db", max_upload_bytes=CAP,
                           miss_limit=500, miss_window=1.0, upload_limit=20, upload_window=1.0)
    app = create_app(config)
    recorder = Recorder()
    app.middlewares.insert(1, recorder.middleware)  # inside the in-flight count, outside the rest
    client = await aiohttp_client(ServeLikeServer(app))
    handler = ErrorLog(recorder)
    logging.getLogger("polygen").addHandler(handler)
    yield request.param, app, client, recorder, config, tmp_path
    logging.getLogger("polygen").removeHandler(handler)


async def test_fuzz_requests(fuzz_target):
    mode, app, client, recorder, config, root = fuzz_target
    loop = asyncio.get_running_loop()
    port = client.server.port
    before = tree_state(root)
    inflight = app[keys.INFLIGHT]
    stats = {"iterations": 0, "runs": 0, "statuses": {}}

    def settle():
        asyncio.run_coroutine_threadsafe(inflight.wait_idle(10), loop).result(15)

    def state() -> tuple[dict, int, int]:
        return tree_state(root), len(db_uploads(config.db)), len(recorder.seen)

    def check(req: dict, received: bytes, pre: tuple[dict, int, int]) -> None:
        """Judge this request alone (relative to the state before it), so a failure shrinks to
        the request that caused it."""
        settle()
        tree_before, rows_before, seen_before = pre
        new = recorder.seen[seen_before:]
        assert not re.search(rb"HTTP/1\.[01] 5\d\d", received), received[:300]
        assert recorder.crashes == []
        assert recorder.errors == []
        assert [s for s in new if s[2] >= 500] == []
        assert tree_state(root) == tree_before, "a file changed under the test directory"
        stored = [s for s in new if s[0] == "PUT" and 200 <= s[2] < 300]
        for method, raw, status, auth in stored:
            name = upload_name(raw) or override_name(raw)
            assert name is not None and name[0] in KNOWN, (method, raw, status)
            assert mode == "open" or valid_credentials(auth), (raw, auth)
        for p in (root / OVERRIDES_DIR).iterdir():
            name = override_name(f"/overrides/{p.name}")
            assert name is not None and name[0] in KNOWN, p.name
            assert len(p.read_bytes()) <= CAP and p.stat().st_mode & 0o777 == 0o600
            overrides.parse(p.read_bytes())
        override_puts = [s for s in stored if override_name(s[1])]
        if override_puts and req["framing"] == "exact":
            assert (root / OVERRIDES_DIR / override_puts[0][1][len("/overrides/"):]).read_bytes() == req["body"]
        rows = db_uploads(config.db)
        assert len(rows) - rows_before == len(stored) - len(override_puts), (len(rows), rows_before, stored)
        assert all(mac in KNOWN and size <= CAP for mac, size in rows[rows_before:])

    def play(req):
        stats["iterations"] += 1
        pre = state()
        data, waits = encode_request(req)
        received = exchange(port, data, waits)
        status = received[9:12].decode("latin-1") or "none"
        stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
        check(req, received, pre)

    def fuzz(strategy, examples):
        return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                        phases=[Phase.generate, Phase.shrink])(given(req=strategy)(play))

    one, one_override = fuzz(requests(), ROUND), fuzz(override_requests(), ROUND // 4)
    budget = FUZZ_SECONDS / 2
    start = time.monotonic()

    def stored(overrides_: bool) -> list:
        return [s for s in recorder.seen if s[0] == "PUT" and 200 <= s[2] < 300
                and bool(override_name(s[1])) == overrides_]

    def reached() -> bool:
        """The fuzzing reached the interesting places: stored uploads and override files,
        refusals of every kind (on a loaded machine a few more seeded rounds get there)."""
        seen = {s[2] for s in recorder.seen}
        return {200, 400, 404}.issubset(seen) and (FUZZ_SECONDS < 4 or (
            bool(stored(False)) and bool(stored(True)) and 413 in seen and (mode == "open" or 401 in seen)))

    def run():
        while time.monotonic() - start < budget or stats["runs"] == 0 or (not reached() and stats["runs"] < 20):
            run_seed = stats["runs"] + (0 if mode == "open" else 10**6)
            seed(run_seed)(one)()
            seed(run_seed)(one_override)()  # and a quarter round of override files
            stats["runs"] += 1

    await asyncio.to_thread(run)
    elapsed = time.monotonic() - start
    rows = db_uploads(config.db)
    assert tree_state(root) == before
    assert len(rows) == len(stored(False))
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(stats["statuses"].items()))
    print(f"\nFIGURE fuzz mode={mode} iterations={stats['iterations']} seconds={elapsed:.1f} "
          f"uploads_stored={len(rows)} overrides_stored={len(stored(True))} failures=0 statuses={statuses}")
    assert reached(), ({s[2] for s in recorder.seen}, len(rows), len(stored(True)))


# ---------------------------------------------------------------------------- the upload-name matcher
HEX_DIGITS = "0123456789abcdef"
macs = st.text(alphabet=HEX_DIGITS, min_size=12, max_size=12)
valid_names = st.builds(lambda prefix, mac, kind: f"/{prefix}{mac}-{kind}.log",
                        st.sampled_from(["", "logs/"]), macs, st.sampled_from(["boot", "app"]))
NEAR = HEX_DIGITS + "ABCDEFgxyz0-./_\n\r\x00\u0660\uff10 \u00e9logsbootapp"


@st.composite
def mutated_names(draw):
    """A valid name with a few random edits: insert, delete, replace, change case."""
    name = list(draw(valid_names))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "case", "append", "prepend"]))
        i = draw(st.integers(0, max(len(name) - 1, 0)))
        ch = draw(st.sampled_from(NEAR))
        if op == "insert":
            name.insert(i, ch)
        elif op == "delete" and name:
            del name[i]
        elif op == "replace" and name:
            name[i] = ch
        elif op == "case" and name:
            name[i] = name[i].swapcase()
        elif op == "append":
            name.append(ch)
        else:
            name.insert(0, ch)
    return "".join(name)


@settings(max_examples=500, deadline=None, database=None)
@given(valid_names)
def test_upload_matcher_accepts_every_valid_name(name):
    m = UPLOAD_RE.fullmatch(name)
    assert m is not None
    assert (m[1], m[2]) == upload_name(name)


@settings(max_examples=2000, deadline=None, database=None)
@given(st.one_of(mutated_names(), st.text(alphabet=NEAR, max_size=30), st.text(max_size=30)))
def test_upload_matcher_accepts_nothing_else(name):
    """Whatever UPLOAD_RE accepts is exactly /[logs/]<12 lower-case hex>-(boot|app).log."""
    m = UPLOAD_RE.fullmatch(name)
    expected = upload_name(name)
    if m is None:
        assert expected is None, name
    else:
        assert expected == (m[1], m[2]), name
        assert re.fullmatch(r"[0-9a-f]{12}", m[1], re.ASCII) and m[2] in ("boot", "app")
        assert name in (f"/{m[1]}-{m[2]}.log", f"/logs/{m[1]}-{m[2]}.log")
