"""The sidecar against attackers (issue 6, SECURITY.md): HTTP basic auth with rotation, MAC
guessing (one 404 for unknown and forbidden names, a per-client miss limiter), upload rates per
MAC, no secret in the logs, and SECURITY.md naming only tests that exist."""

from __future__ import annotations

import ast
import asyncio
import base64
import logging
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen import htpasswd
from polygen.cli import cli
from polygen.errors import SidecarConfigError
from polygen.sidecar import SidecarConfig, create_app, keys
from polygen.sidecar.accesslog import KeyValueAccessLogger
from polygen.sidecar.guard import TokenBuckets, is_public
from tests.test_sidecar import MAC, MAC2, UNKNOWN, counts, make_generation, point_out

ROOT = Path(__file__).resolve().parents[1]
CURRENT = ("phones-2026b", "n3w-Pa55word")
PREVIOUS = ("phones-2026a", "0ld-Pa55word")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def add_htpasswd(gen: Path, entries=(CURRENT, PREVIOUS)) -> None:
    (gen / htpasswd.FILENAME).write_text(htpasswd.render(list(entries), "test site"))
    (gen / htpasswd.FILENAME).chmod(0o640)


@pytest.fixture
def auth_site(tmp_path) -> Path:
    base = tmp_path / "site"
    base.mkdir()
    gen = make_generation(base, "g000001")
    add_htpasswd(gen)
    point_out(base, gen)
    return base


@pytest.fixture
def open_site(tmp_path) -> Path:
    base = tmp_path / "open-site"
    base.mkdir()
    point_out(base, make_generation(base, "g000001"))
    return base


def make_config(site: Path, tmp_path: Path, **kw) -> SidecarConfig:
    kw.setdefault("miss_limit", 0)
    kw.setdefault("upload_limit", 0)
    return SidecarConfig(out=site / "out", db=tmp_path / "logs.db", **kw)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def raw_exchange(client, method: str, target: str, headers: dict | None = None) -> bytes:
    """The response exactly as it came over the wire, with the Date header taken out."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = f"{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    writer.write(head.encode() + b"\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return re.sub(rb"\r\nDate: [^\r]*", b"", data)


# ---------------------------------------------------------------------------- auth
PRIVATE = [
    ("GET", "/site.cfg"),
    ("GET", f"/{MAC}-phone.cfg"),
    ("HEAD", f"/{MAC}-phone.cfg"),
    ("GET", f"/contacts/{MAC}-directory.xml"),
    ("GET", "/contacts/000000000000-directory.xml"),
    ("HEAD", f"/logs/{MAC}-app.log"),
    ("PUT", f"/logs/{MAC}-app.log"),
    ("PUT", f"/{MAC}-boot.log"),
    ("GET", f"/{UNKNOWN}-phone.cfg"),
    ("GET", "/ua-index.json"),
]
PUBLIC = ["/000000000000.cfg", "/prov/site-a/000000000000.cfg", "/bootstrap/VVX410.cfg",
          "/firmware/5.9.7/sip.ld", "/healthz"]


@pytest.mark.parametrize(("method", "path"), PRIVATE, ids=[f"{m} {p}" for m, p in PRIVATE])
async def test_auth_required_for_private_files(aiohttp_client, auth_site, tmp_path, method, path):
    config = make_config(auth_site, tmp_path)
    client = await aiohttp_client(create_app(config))
    for headers in ({}, basic(CURRENT[0], "wrong"), basic("nobody", CURRENT[1]),
                    basic(PREVIOUS[0], CURRENT[1])):
        r = await client.request(method, path, headers=headers, data=b"x\n" if method == "PUT" else None)
        assert r.status == 401, headers
        assert r.headers["WWW-Authenticate"] == 'Basic realm="polygen"'
        if method != "HEAD":
            assert await r.json() == {"error": {"status": 401, "message": "authentication required"}}
    assert counts(config.db) == (0, 0)


@pytest.mark.parametrize("path", PUBLIC)
async def test_public_names_need_no_auth(aiohttp_client, auth_site, tmp_path, path):
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path)))
    for method in ("GET", "HEAD"):
        r = await client.request(method, path)
        assert r.status == 200, (method, path)
        assert "WWW-Authenticate" not in r.headers


async def test_current_and_previous_users_both_work(aiohttp_client, auth_site, tmp_path):
    """Rotation overlap: phones still on the old credentials and phones on the new are served."""
    config = make_config(auth_site, tmp_path)
    client = await aiohttp_client(create_app(config))
    for n, (user, password) in enumerate((CURRENT, PREVIOUS)):
        auth = basic(user, password)
        r = await client.get(f"/{MAC}-phone.cfg", headers=auth)
        assert (r.status, await r.read()) == (200, f"<polycomConfig phone={MAC}/>".encode())
        assert (await client.get("/site.cfg", headers=auth)).status == 200
        assert (await client.head(f"/logs/{MAC}-app.log", headers=auth)).status == 200
        r = await client.put(f"/logs/{MAC}-app.log", data=f"line {n}\n".encode(), headers=auth)
        assert r.status == 201
    assert counts(config.db) == (2, 2)


async def test_auth_follows_the_generation(aiohttp_client, auth_site, tmp_path):
    """.htpasswd is re-read when the generation changes: rotation done, auth turned off, on again."""
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path)))
    old, new = basic(*PREVIOUS), basic(*CURRENT)
    assert (await client.get("/site.cfg", headers=old)).status == 200
    # the rotation is over: the next build keeps only the current user
    gen = make_generation(auth_site, "g000002")
    add_htpasswd(gen, [CURRENT])
    point_out(auth_site, gen)
    assert (await client.get("/site.cfg", headers=old)).status == 401
    assert (await client.get("/site.cfg", headers=new)).status == 200
    # provisioning_auth removed from the site: no .htpasswd, no auth
    point_out(auth_site, make_generation(auth_site, "g000003"))
    assert (await client.get("/site.cfg")).status == 200
    # and on again
    gen = make_generation(auth_site, "g000004")
    add_htpasswd(gen, [("third", "pw3")])
    point_out(auth_site, gen)
    assert (await client.get("/site.cfg")).status == 401
    assert (await client.get("/site.cfg", headers=basic("third", "pw3"))).status == 200


async def test_unreadable_htpasswd_refuses_everyone(aiohttp_client, auth_site, tmp_path):
    """Fail closed: a .htpasswd that cannot be parsed into users lets nobody in."""
    (auth_site / "out" / htpasswd.FILENAME).write_bytes(b"\xff\xfe garbage without a colon\n")
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path)))
    assert (await client.get("/site.cfg", headers=basic(*CURRENT))).status == 401
    assert (await client.get("/000000000000.cfg")).status == 200


GARBAGE_AUTH = ["Basic", "Basic ", "Basic !!!!", "Basic " + "A" * 5000, "basic " + base64.b64encode(b"a:b").decode(),
                "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), "Basic " + base64.b64encode(b"nocolon").decode(),
                "Bearer abc", "Digest username=x", "Basic =====", "Basic " + base64.b64encode(b":").decode()]


@pytest.mark.parametrize("header", GARBAGE_AUTH, ids=range(len(GARBAGE_AUTH)))
async def test_garbage_authorization_is_a_401(aiohttp_client, auth_site, tmp_path, header):
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path)))
    r = await client.get("/site.cfg", headers={"Authorization": header})
    assert r.status == 401


async def test_secrets_never_logged(aiohttp_client, auth_site, tmp_path, caplog):
    """Neither the Authorization header nor a password (right or wrong) reaches any log line."""
    config = make_config(auth_site, tmp_path)
    from aiohttp.test_utils import TestServer

    server = TestServer(create_app(config))  # with the access logger `polygen serve` uses
    await server.start_server(access_log_class=KeyValueAccessLogger,
                              access_log=logging.getLogger("polygen.access"))
    client = await aiohttp_client(server)
    secrets = [CURRENT[1], PREVIOUS[1], "guessed-Secret"]
    headers = [basic(*CURRENT), basic(*PREVIOUS), basic(CURRENT[0], "guessed-Secret")]
    with caplog.at_level(logging.DEBUG):
        for h in headers:
            await client.get("/site.cfg", headers=h)
            await client.put(f"/logs/{MAC}-app.log", data=b"x\n", headers=h)
            await client.get("/../x", headers=h)
            await client.get(f"/{UNKNOWN}-phone.cfg", headers=h)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records)
    assert "polygen.access" in text and "auth=ok" in text and "auth=bad" in text
    for h in headers:
        assert h["Authorization"][6:] not in text
    for secret in secrets + [CURRENT[0], PREVIOUS[0]]:
        assert secret not in text
    assert "Authorization" not in text and "Basic " not in text


# ---------------------------------------------------------------------------- MAC guessing
NOT_FOUND_PATHS = [f"/{UNKNOWN}-phone.cfg", f"/{MAC}.cfg", "/.htpasswd", "/.polygen-manifest.json",
                   "/escape.cfg", "/outside.txt", "/nothing.cfg", f"/contacts/{UNKNOWN}-directory.xml",
                   "/contacts/", "/", "/bootstrap/", f"/{MAC}-phone.cfg.bak", "/.out.gens/g000001/site.cfg"]


@pytest.mark.parametrize("with_auth", [False, True], ids=["open", "auth"])
async def test_unknown_and_forbidden_get_byte_identical_404s(aiohttp_client, auth_site, open_site, tmp_path,
                                                           with_auth):
    """An unknown MAC's config, hidden files, escaping links and missing files: the same 404,
    byte for byte apart from Date, so a scanner cannot tell them apart."""
    site = auth_site if with_auth else open_site
    client = await aiohttp_client(create_app(make_config(site, tmp_path)))
    headers = basic(*CURRENT) if with_auth else {}
    for method in ("GET", "HEAD"):
        answers = {p: await raw_exchange(client, method, p, headers) for p in NOT_FOUND_PATHS}
        reference = answers[f"/{UNKNOWN}-phone.cfg"]
        assert reference.startswith(b"HTTP/1.1 404 Not Found\r\n")
        if method == "GET":
            assert reference.endswith(b'\r\n\r\n{"error": {"status": 404, "message": "not found"}}')
        assert {p: a for p, a in answers.items() if a != reference} == {}
        # a known phone's file is served (so the 404s above are not just "everything is 404")
        assert (await raw_exchange(client, method, f"/{MAC}-phone.cfg", headers)).startswith(b"HTTP/1.1 200")
    # the HEAD of an unknown phone's log says no more than that
    assert (await client.head(f"/logs/{UNKNOWN}-app.log", headers=headers)).status == 404


async def test_unauthenticated_scanner_sees_one_answer(aiohttp_client, auth_site, tmp_path):
    """Without credentials known and unknown MACs and forbidden names all get the same 401."""
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path)))
    answers = {p: await raw_exchange(client, "GET", p) for p in
               [f"/{MAC}-phone.cfg", f"/{UNKNOWN}-phone.cfg", "/.htpasswd", "/site.cfg", "/nothing.cfg"]}
    assert len(set(answers.values())) == 1
    assert next(iter(answers.values())).startswith(b"HTTP/1.1 401 Unauthorized\r\n")


async def test_miss_limiter_slows_a_scanner(aiohttp_client, open_site, tmp_path):
    """After miss_limit 404s a client gets 429 for every private name, hits included, until the
    bucket refills; bootstraps and firmware stay open; other clients are not affected."""
    config = make_config(open_site, tmp_path, miss_limit=5, miss_window=60)
    app = create_app(config)
    clock = FakeClock()
    app[keys.GUARD].misses.clock = clock
    client = await aiohttp_client(app)
    for i in range(5):
        assert (await client.get(f"/0004f2{i:06x}-phone.cfg")).status == 404
    for path in (f"/0004f2{9:06x}-phone.cfg", f"/{MAC}-phone.cfg", "/site.cfg"):
        r = await client.get(path)
        assert r.status == 429, path
        assert r.headers["Retry-After"] == "12"  # one token every 60/5 s
        assert await r.json() == {"error": {"status": 429, "message": "too many requests: slow down"}}
    r = await client.put(f"/logs/{MAC}-app.log", data=b"x\n")
    assert r.status == 429
    assert counts(config.db) == (0, 0)
    for path in ("/000000000000.cfg", "/bootstrap/VVX410.cfg", "/firmware/5.9.7/sip.ld", "/healthz"):
        assert (await client.get(path)).status == 200, path
    # another client (through the trusted proxy on loopback) has its own bucket
    assert (await client.get(f"/{MAC}-phone.cfg", headers={"X-Real-IP": "192.0.2.7"})).status == 200
    clock.now += 12  # one token back
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 200
    assert (await client.get("/nothing.cfg")).status == 404
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 429


async def test_phones_booting_do_not_trip_the_miss_limiter(aiohttp_client, open_site, tmp_path):
    """Every phone asks for <mac>.cfg first (never generated, the same 404 for every MAC): those
    404s take no token, so many phones booting behind one address are not held back by them."""
    client = await aiohttp_client(create_app(make_config(open_site, tmp_path, miss_limit=2)))
    for n in range(50):
        assert (await client.get(f"/0004f2{n:06x}.cfg")).status == 404
        assert (await client.get(f"/prov/0004F2{n:06X}.cfg")).status == 404
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 200
    for _ in range(2):
        assert (await client.get("/nothing.cfg")).status == 404
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 429


async def test_optional_boot_names_take_no_token(aiohttp_client, open_site, tmp_path):
    """The override, license and call-list files a phone asks for at every boot are never built:
    their 404s say nothing about the MAC, so phones booting behind one address never trip the limiter."""
    client = await aiohttp_client(create_app(make_config(open_site, tmp_path, miss_limit=2)))
    for n in range(50):
        for name in (f"0004f2{n:06x}-web.cfg", f"0004f2{n:06x}-license.cfg", "000000000000-license.cfg",
                     f"0004f2{n:06x}-calls.xml"):
            assert (await client.get(f"/{name}")).status == 404, name
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 200
    for name in (f"{UNKNOWN}-phone.cfg", f"{UNKNOWN}-webx.cfg"):  # guesses still count
        assert (await client.get(f"/{name}")).status == 404
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 429


async def test_split_image_names_take_no_token(aiohttp_client, open_site, tmp_path):
    """Each phone asks for its split image <part>.sip.ld before the combined sip.ld, at every boot:
    with a combined release that 404 is no guess, and many phones behind one address boot."""
    client = await aiohttp_client(create_app(make_config(open_site, tmp_path, miss_limit=2)))
    for n in range(50):
        assert (await client.get(f"/firmware/5.9.7/3111-{n:05d}-001.sip.ld")).status == 404
        assert (await client.get("/firmware/5.9.7/sip.ld")).status == 200
    assert (await client.get(f"/{MAC}-phone.cfg")).status == 200


async def test_nginx_asks_the_miss_limiter(aiohttp_client, auth_site, tmp_path):
    """What nginx in front asks (polygen.nginx): the guard is 204 until the client is held back; a
    reported 404, and a reported 401 with credentials, take a token; then all three are 429."""
    client = await aiohttp_client(create_app(make_config(auth_site, tmp_path, miss_limit=3)))
    nginx = {"X-Real-IP": "192.0.2.10"}
    for _ in range(5):
        assert (await client.get("/_polygen/guard", headers=nginx)).status == 204
        r = await client.get("/_polygen/unauthorized", headers=nginx)  # no credentials: free
        assert (r.status, r.headers["WWW-Authenticate"]) == (401, 'Basic realm="polygen"')
    r = await client.get("/_polygen/miss", headers=nginx)
    assert (r.status, await r.json()) == (404, {"error": {"status": 404, "message": "not found"}})
    for n in range(2):
        r = await client.get("/_polygen/unauthorized", headers={**nginx, **basic(CURRENT[0], f"guess{n}")})
        assert r.status == 401
    for path in ("/_polygen/guard", "/_polygen/miss", "/_polygen/unauthorized"):
        r = await client.get(path, headers=nginx)
        assert (r.status, r.headers["Retry-After"]) == (429, "20"), path
    # another client behind the same nginx has its own bucket; nothing here needs credentials
    assert (await client.get("/_polygen/guard", headers={"X-Real-IP": "192.0.2.11"})).status == 204


async def test_wrong_passwords_count_as_misses(aiohttp_client, auth_site, tmp_path):
    """Password guessing is slowed like MAC guessing; a first try without credentials is free."""
    app = create_app(make_config(auth_site, tmp_path, miss_limit=3))
    client = await aiohttp_client(app)
    for _ in range(10):
        assert (await client.get("/site.cfg")).status == 401  # no credentials: no token taken
    for n in range(3):
        assert (await client.get("/site.cfg", headers=basic(CURRENT[0], f"guess{n}"))).status == 401
    assert (await client.get("/site.cfg", headers=basic(*CURRENT))).status == 429


async def test_x_real_ip_only_from_trusted_proxies(aiohttp_client, open_site, tmp_path):
    config = make_config(open_site, tmp_path, miss_limit=2, real_ip_from=())
    client = await aiohttp_client(create_app(config))
    for n in range(2):
        assert (await client.get("/nothing.cfg", headers={"X-Real-IP": f"192.0.2.{n}"})).status == 404
    # the header is not believed from an untrusted peer: one bucket for all of them
    assert (await client.get("/nothing.cfg", headers={"X-Real-IP": "192.0.2.99"})).status == 429


def test_client_keys():
    """IPv6 clients are grouped by /64; garbage X-Real-IP falls back to the peer address."""
    from types import SimpleNamespace

    from polygen.sidecar.guard import Guard

    guard = Guard(SidecarConfig(out=Path("o"), db=Path("d")))

    def key(remote, real=None):
        headers = {"X-Real-IP": real} if real is not None else {}
        return guard.client(SimpleNamespace(remote=remote, headers=headers))

    assert key("192.0.2.1") == "192.0.2.1"
    assert key("2001:db8:1:2:3:4:5:6") == key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert key("::ffff:192.0.2.1") == "192.0.2.1"
    assert key("127.0.0.1", "198.51.100.4") == "198.51.100.4"
    assert key("127.0.0.1", "not an ip\x00") == "127.0.0.1"
    assert key("192.0.2.1", "198.51.100.4") == "192.0.2.1"
    assert key(None) == "unknown"


def test_token_buckets():
    clock = FakeClock()
    b = TokenBuckets(3, 30, clock=clock, max_keys=4)
    assert [b.take("a") for _ in range(4)] == [True, True, True, False]
    assert not b.allowed("a") and b.allowed("b")
    assert b.retry_after("a") == 10
    clock.now += 10
    assert b.take("a") and not b.take("a")
    clock.now += 1000
    assert b.level("a") == 3  # never above capacity
    for n in range(100):  # many keys: memory stays bounded
        b.take(f"k{n}")
    assert len(b) <= 4
    off = TokenBuckets(0, 60)
    assert all(off.take("x") for _ in range(1000)) and off.allowed("x") and len(off) == 0


def test_public_names():
    for p in PUBLIC:
        assert is_public("GET", p) and is_public("HEAD", p)
    for method, p in PRIVATE:
        assert not is_public(method, p)
    assert not is_public("PUT", "/000000000000.cfg")
    assert not is_public("GET", "/bootstrap/")
    assert not is_public("GET", "/site.cfg/000000000000.cfg/x")


# ---------------------------------------------------------------------------- uploads per MAC
async def test_upload_rate_per_mac(aiohttp_client, open_site, tmp_path):
    config = make_config(open_site, tmp_path, upload_limit=3, upload_window=60)
    app = create_app(config)
    clock = FakeClock()
    app[keys.GUARD].uploads.clock = clock
    client = await aiohttp_client(app)
    for n in range(3):
        assert (await client.put(f"/logs/{MAC}-app.log", data=f"piece {n}\n".encode())).status == 201
    r = await client.put(f"/logs/{MAC}-app.log", data=b"piece 3\n")
    assert r.status == 429
    assert r.headers["Retry-After"] == "20"
    assert await r.json() == {"error": {"status": 429, "message": f"too many uploads for {MAC}: slow down"}}
    assert (await client.put(f"/{MAC}-boot.log", data=b"boot\n")).status == 429  # per MAC, both kinds
    assert counts(config.db) == (3, 3)  # nothing stored for the refused ones
    assert (await client.put(f"/logs/{MAC2}-app.log", data=b"other phone\n")).status == 201
    clock.now += 20
    assert (await client.put(f"/logs/{MAC}-app.log", data=b"piece 3\n")).status == 201
    assert counts(config.db) == (5, 5)


async def test_upload_cut_off_is_not_a_server_error(aiohttp_client, open_site, tmp_path, caplog):
    """A client that announces more body than it sends and goes away: 400 (not 500), no traceback
    in the log, nothing stored. Run like `polygen serve` (handlers not cancelled on disconnect)."""
    from tests.test_fuzz_sidecar import ServeLikeServer

    config = make_config(open_site, tmp_path)
    client = await aiohttp_client(ServeLikeServer(create_app(config)))
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(f"PUT /logs/{MAC}-app.log HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
                     "000001.000|app1 |2|00|half a body\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(500):  # until the server has judged it (bounded)
            if any("status=" in r.getMessage() for r in caplog.records if r.name == "polygen.access"):
                break
            await asyncio.sleep(0.01)
    access = [r.getMessage() for r in caplog.records if r.name == "polygen.access"]
    assert len(access) == 1 and "status=400" in access[0] and "cut_off=" in access[0], access
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert counts(config.db) == (0, 0)


# ---------------------------------------------------------------------------- configuration
def test_limits_validation(tmp_path):
    with pytest.raises(SidecarConfigError, match="rate limits must be 0"):
        SidecarConfig(out=tmp_path, db=tmp_path / "x.db", miss_limit=-1)
    with pytest.raises(SidecarConfigError, match="windows must be a positive"):
        SidecarConfig(out=tmp_path, db=tmp_path / "x.db", upload_window=0)


def serve_configs(monkeypatch, tmp_path) -> tuple[CliRunner, list[str], list[SidecarConfig]]:
    """A runner, the arguments of a `polygen serve` that only builds its SidecarConfig, and the
    list each invocation appends that config to."""
    import polygen.sidecar.app as sidecar_app

    seen: list[SidecarConfig] = []
    monkeypatch.setattr(sidecar_app, "run", lambda config, **kw: seen.append(config))
    args = ["serve", "-o", str(tmp_path / "out"), "--db", str(tmp_path / "x.db"), "-i", str(ROOT / "inventory")]
    return CliRunner(), args, seen


def test_serve_options_and_envvars(monkeypatch, tmp_path):
    """--miss-limit/--upload-limit and POLYGEN_SERVE_* reach SidecarConfig; defaults agree."""
    runner, args, seen = serve_configs(monkeypatch, tmp_path)
    assert runner.invoke(cli, args, catch_exceptions=False).exit_code == 0
    default = SidecarConfig(out=tmp_path, db=tmp_path / "x.db")
    assert (seen[-1].miss_limit, seen[-1].upload_limit) == (default.miss_limit, default.upload_limit)
    assert runner.invoke(cli, args + ["--miss-limit", "0", "--upload-limit", "5"]).exit_code == 0
    assert (seen[-1].miss_limit, seen[-1].upload_limit) == (0, 5)
    env = {"POLYGEN_SERVE_MISS_LIMIT": "7", "POLYGEN_SERVE_UPLOAD_LIMIT": "9"}
    assert runner.invoke(cli, args, env=env).exit_code == 0
    assert (seen[-1].miss_limit, seen[-1].upload_limit) == (7, 9)
    result = runner.invoke(cli, args + ["--miss-limit", "-1"])
    assert result.exit_code == 2 and "--miss-limit" in result.output
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert "POLYGEN_SERVE_MISS_LIMIT" in help_text and "POLYGEN_SERVE_UPLOAD_LIMIT" in help_text


# ---------------------------------------------------------------------------- secrets elsewhere
@pytest.mark.parametrize("value", ['["s3cret-LIST"]', "{x: s3cret-MAP}", '"s3cret-QUOTE"x"', "s3cret-OK"])
def test_secrets_never_in_error_messages(inventory_dir, tmp_path, value):
    """A broken (or fine) secret next to other mistakes: check's and build's messages never echo it."""
    ext = inventory_dir / "extensions.yaml"
    ext.write_text(re.sub(r'secret: "s3cret-1001"', f"secret: {value}", ext.read_text()))
    phones = inventory_dir / "phones.yaml"
    phones.write_text(phones.read_text().replace("model: VVX410", "model: VVX999"))
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace(
        "  settings:\n", '  provisioning_auth: {user: "bad user", password: "s3cret-PROV"}\n  settings:\n'))
    runner = CliRunner()
    for args in (["check", "-i", str(inventory_dir)],
                 ["build", "-i", str(inventory_dir), "-o", str(tmp_path / "out"), "-t", str(ROOT / "templates")]):
        result = runner.invoke(cli, args, env={"POLYGEN_SECRET_1002": "s3cret-ENV"})
        assert result.exit_code == 1, result.output
        assert "VVX999" in result.output  # the other mistakes are reported
        assert "s3cret" not in result.output, result.output


def test_secret_paths_are_ignored_by_git():
    """The secrets file, the built tree (0640 configs with SIP passwords) and the log database
    cannot be committed by accident."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    from polygen.inventory import SECRETS_FILENAMES

    # every secrets file name polygen reads, where the README puts it and elsewhere, and the
    # copies editors leave beside it (backup, swap, autosave, lock link)
    secrets = [f"{d}{name}" for name in SECRETS_FILENAMES for d in ("inventory/", "", "site/inventory/")]
    secrets += [f"inventory/{copy.format(name)}" for name in SECRETS_FILENAMES for copy in (
        "{}~", ".{}.swp", ".{}.swo", "#{}#", ".#{}", "{}.bak", "{}.orig", "{}.save", "{}.tmp", ".{}.un~")]
    paths = secrets + ["out", ".out.gens/g000001/0004f2000330-phone.cfg", "logs.db", "logs.db-wal", "polygen-logs.db"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert sorted(r.stdout.splitlines()) == sorted(paths)
    # the test corpus's broken secrets files are test data, and stay in git
    kept = ["tests/corpus/secrets-file-bad-shape/secrets.yaml", "inventory/phones.yaml", "polygen/inventory/secrets.py"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *kept], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout == ""


# ---------------------------------------------------------------------------- SECURITY.md
NODE_RE = re.compile(r"(tests/test_[a-z0-9_]+\.py)::([A-Za-z_][A-Za-z0-9_]*)")


def security_md_node_ids() -> list[tuple[str, str]]:
    return NODE_RE.findall((ROOT / "SECURITY.md").read_text())


def test_every_test_named_in_security_md_exists():
    """Each promise in SECURITY.md names the test that proves it; each of those tests exists."""
    ids = security_md_node_ids()
    assert len(ids) >= 20, "SECURITY.md should name the tests behind its promises"
    defined: dict[str, set[str]] = {}
    missing = []
    for file, name in ids:
        if file not in defined:
            path = ROOT / file
            if not path.is_file():
                missing.append(f"{file} (no such file)")
                defined[file] = set()
                continue
            tree = ast.parse(path.read_text())
            defined[file] = {n.name for n in tree.body
                             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")}
        if name not in defined[file]:
            missing.append(f"{file}::{name}")
    assert missing == []
