"""polygen.nginx: the generated config passes ``nginx -t`` and behaves as designed in a real nginx.

The end-to-end tests start nginx on 127.0.0.1:<free port> serving a hand-made out/ tree (a
symlink to a generation directory, as DESIGN.md lays out) with a tiny aiohttp stub standing in
for the sidecar, only to record what nginx forwards to it. The guessing limit is tested with the
real sidecar (``polygen.sidecar.create_app``), whose miss limiter nginx asks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from polygen.errors import PolygenError
from polygen.nginx import MISS_LIMIT, render_nginx
from tests.daemons import Nginx, free_port, nginx_check, require_binary, write_nginx_main_conf

MAC = "0004f2a1b2c3"
UA_330 = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247"
UA_410 = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"
UA_UNKNOWN = "FileTransport PolycomVVX-VVX_999-UA/6.4.6.0001 Type/Application"

INDEX = {
    "version": 1,
    "default": "000000000000.cfg",
    "models": {"SPIP_330": "bootstrap/SPIP330.cfg", "VVX_410": "bootstrap/VVX410.cfg"},
}


def make_generation(gens: Path, name: str, tag: str) -> Path:
    gen = gens / name
    files = {
        "ua-index.json": json.dumps(INDEX),
        "000000000000.cfg": f"<APPLICATION default {tag}/>\n",
        "bootstrap/SPIP330.cfg": f"<APPLICATION SPIP330 {tag}/>\n",
        "bootstrap/VVX410.cfg": f"<APPLICATION VVX410 {tag}/>\n",
        f"{MAC}-phone.cfg": f"<polycomConfig reg.1.auth.password=secret {tag}/>\n",
        "site.cfg": "<polycomConfig site/>\n",
        "site-sip3.cfg": "<sip site3/>\n",
        "contacts/000000000000-directory.xml": "<directory><item_list/></directory>\n",
        "firmware/5.9.7/sip.ld": "firmware-bytes\n",
        "firmware/5.9.7/sip.ver": "5.9.7.4477\n",
        ".polygen-manifest.json": '{"secret": "manifest"}\n',
        ".polygen-build.json": '{"commit": "manifest of the build"}\n',
    }
    for rel, text in files.items():
        path = gen / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chmod(gen / f"{MAC}-phone.cfg", 0o640)
    os.chmod(gen / ".polygen-manifest.json", 0o600)
    return gen


def swap_out(out: Path, gen: Path) -> None:
    """The build's atomic swap: a new symlink renamed over `out`."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.symlink_to(os.path.relpath(gen, out.parent))
    os.replace(tmp, out)


@pytest.fixture
def out_tree(tmp_path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "secret.txt").write_text("outside out/\n")
    gen = make_generation(site / ".out.gens", "g000001-aaaaaaaa", "gen1")
    out = site / "out"
    swap_out(out, gen)
    return out


# ---------------------------------------------------------------- a stub sidecar
class StubSidecar:
    """aiohttp app in a thread, recording (method, path_qs, body) of each request."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, str, bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def app(self):
        from aiohttp import web

        async def handler(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append((request.method, request.path_qs, body))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        return app

    def _run(self) -> None:
        from aiohttp import web

        async def start() -> web.AppRunner:
            runner = web.AppRunner(self.app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        asyncio.set_event_loop(self._loop)
        self._runner = self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> StubSidecar:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def sidecar():
    stub = StubSidecar().start()
    yield stub
    stub.stop()


class RealSidecar(StubSidecar):
    """The real sidecar app (``polygen serve --no-static``) in a thread, on ``out``."""

    def __init__(self, out: Path, db: Path, **config) -> None:
        super().__init__()
        self.config = {"out": out, "db": db, "static": False, **config}

    def app(self):
        from polygen.sidecar import SidecarConfig, create_app

        return create_app(SidecarConfig(**self.config))


def start_nginx(tmp_path: Path, out: Path, **kw) -> Nginx:
    require_binary("nginx")
    port = free_port()
    kw.setdefault("sidecar", f"127.0.0.1:{free_port()}")  # none: never whatever runs on 8080 here
    site_conf = tmp_path / "polygen.conf"
    site_conf.write_text(render_nginx(out, listen=f"127.0.0.1:{port}", **kw))
    conf = write_nginx_main_conf(tmp_path / "nginx", [site_conf])
    return Nginx(conf, "127.0.0.1", port).start()


@pytest.fixture
def served(tmp_path, out_tree, sidecar):
    server = start_nginx(tmp_path, out_tree, sidecar=f"127.0.0.1:{sidecar.port}")
    yield server
    server.stop()


def exchange(server: Nginx, method: str, path: str, *, ua: str | None = UA_410, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request with the path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        hdrs = dict(headers or {})
        if ua is not None:
            hdrs["User-Agent"] = ua
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def request(server: Nginx, method: str, path: str, **kw) -> tuple[int, bytes]:
    status, _, body = exchange(server, method, path, **kw)
    return status, body


# ---------------------------------------------------------------- nginx -t
def check_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    site_conf = tmp_path / "polygen.conf"
    site_conf.write_text(text)
    return nginx_check(write_nginx_main_conf(tmp_path / "nginx", [site_conf]))


def test_default_config_passes_nginx_t(tmp_path, out_tree):
    result = check_config(tmp_path, render_nginx(out_tree, listen=f"127.0.0.1:{free_port()}"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_broken_config_fails_nginx_t(tmp_path, out_tree):
    text = render_nginx(out_tree, listen=f"127.0.0.1:{free_port()}").replace("autoindex off;", "autoindex of;")
    assert check_config(tmp_path, text).returncode != 0


def test_tls_and_auth_config_passes_nginx_t(tmp_path, out_tree):
    openssl = require_binary("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=prov.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("phone:{PLAIN}s3cret\n")
    text = render_nginx(out_tree, listen=f"127.0.0.1:{free_port()}", server_name="prov.test prov",
                        auth_file=htpasswd, tls_cert=cert, tls_key=key)
    assert re.search(r"listen 127\.0\.0\.1:\d+ ssl;", text)
    assert f'ssl_certificate "{cert}";' in text and f'auth_basic_user_file "{htpasswd}";' in text
    result = check_config(tmp_path, text)
    assert result.returncode == 0, result.stderr


def test_config_shape(out_tree):
    text = render_nginx(out_tree)
    assert text.startswith("# polygen ")
    assert "/etc/nginx/conf.d/" in text.split("\n\n", 1)[0]
    # http-context lines come before the server block
    assert text.index("\nmap $http_user_agent") < text.index("\nlimit_req_zone ") < text.index("\nserver {")
    assert '    "~*(?:^|[^A-Za-z0-9_])SPIP_330-UA/" /bootstrap/SPIP330.cfg;\n' in text
    assert '    "~*(?:^|[^A-Za-z0-9_])VVX_410-UA/" /bootstrap/VVX410.cfg;\n' in text
    assert "    default /000000000000.cfg;\n" in text
    # the symlink itself, not its target
    assert f'root "{out_tree}";' in text and ".gens" not in text
    assert "open_file_cache off;" in text and "autoindex off;" in text
    assert "$request_uri" not in text
    assert "listen 80;" in text and "server 127.0.0.1:8080;" in text


def test_missing_ua_index(tmp_path):
    with pytest.raises(PolygenError, match=re.escape("ua-index.json not found: run `polygen build` first")):
        render_nginx(tmp_path)


@pytest.mark.parametrize("index, message", [
    ("{", "not valid JSON"),
    ('{"version": 2}', "unsupported format (expected version 1)"),
    ('{"version": 1, "models": {"SPIP 330": "bootstrap/x.cfg"}}', "invalid User-Agent model token 'SPIP 330'"),
    ('{"version": 1, "models": {"SPIP_330": "../etc/passwd"}}', "models.SPIP_330: expected a path like bootstrap/<TOKEN>.cfg"),
    ('{"version": 1, "models": {"SPIP_330": "bootstrap/x;y.cfg"}}', "expected a path like bootstrap/<TOKEN>.cfg"),
    # a trailing newline is not the end of a name ($ would let it through)
    ('{"version": 1, "models": {"SPIP_330\\n": "bootstrap/x.cfg"}}', "invalid User-Agent model token"),
    ('{"version": 1, "models": {"SPIP_330": "bootstrap/x.cfg\\n"}}', "expected a path like bootstrap/<TOKEN>.cfg"),
])
def test_bad_ua_index(tmp_path, index, message):
    (tmp_path / "ua-index.json").write_text(index)
    with pytest.raises(PolygenError, match=re.escape(message)):
        render_nginx(tmp_path)


@pytest.mark.parametrize("kw, message", [
    ({"listen": "80; evil"}, "invalid --listen"),
    ({"sidecar": "8080"}, "invalid --sidecar"),
    ({"sidecar": "127.0.0.1:8080\n"}, "invalid --sidecar"),
    ({"server_name": "a;b"}, "invalid --server-name"),
    ({"miss_limit": -1}, "invalid --miss-limit -1: expected 0 (no limit) or a positive number"),
    ({"tls_cert": Path("/c.pem")}, "TLS needs both --tls-cert and --tls-key"),
    ({"auth_file": Path("/etc/$x")}, "contains a character nginx cannot quote"),
])
def test_bad_arguments(out_tree, kw, message):
    with pytest.raises(PolygenError, match=re.escape(message)):
        render_nginx(out_tree, **kw)


def test_out_path_with_dollar_refused(tmp_path):
    out = tmp_path / "o$ut"
    out.mkdir()
    (out / "ua-index.json").write_text(json.dumps(INDEX))
    with pytest.raises(PolygenError, match="nginx cannot quote"):
        render_nginx(out)


# ---------------------------------------------------------------- real nginx
@pytest.mark.parametrize("ua, expected", [
    (UA_330, b"<APPLICATION SPIP330 gen1/>\n"),
    ("FileTransport PolycomSoundPointIP-SPIP_330-UA/4.2.1.0275", b"<APPLICATION SPIP330 gen1/>\n"),
    (UA_410, b"<APPLICATION VVX410 gen1/>\n"),
    (UA_UNKNOWN, b"<APPLICATION default gen1/>\n"),
    ("curl/8.0", b"<APPLICATION default gen1/>\n"),
    (None, b"<APPLICATION default gen1/>\n"),
])
def test_bootstrap_dispatch_by_user_agent(served, ua, expected):
    assert request(served, "GET", "/000000000000.cfg", ua=ua) == (200, expected)


def test_static_files(served):
    assert request(served, "GET", f"/{MAC}-phone.cfg")[0] == 200
    assert request(served, "GET", "/site.cfg") == (200, b"<polycomConfig site/>\n")
    assert request(served, "GET", "/site-sip3.cfg")[0] == 200
    assert request(served, "GET", "/bootstrap/SPIP330.cfg")[0] == 200
    assert request(served, "GET", "/firmware/5.9.7/sip.ld") == (200, b"firmware-bytes\n")
    assert request(served, "HEAD", "/firmware/5.9.7/sip.ver")[0] == 200


def test_a_phone_without_its_own_directory_gets_the_shared_one(served, out_tree):
    shared = (200, b"<directory><item_list/></directory>\n")
    assert request(served, "GET", f"/contacts/{MAC}-directory.xml") == shared
    assert request(served, "GET", "/contacts/000000000000-directory.xml") == shared
    assert request(served, "PUT", f"/contacts/{MAC}-directory.xml", body=b"<directory/>")[0] == 403
    # a phone with speed dials has its own (DESIGN.md); the others still get the shared one
    own = b"<directory><item_list><item><ct>5551000</ct><sd>1</sd></item></item_list></directory>\n"
    (out_tree / "contacts" / f"{MAC}-directory.xml").write_bytes(own)
    assert request(served, "GET", f"/contacts/{MAC}-directory.xml") == (200, own)
    assert request(served, "GET", "/contacts/0004f2000999-directory.xml") == shared
    assert request(served, "PUT", f"/contacts/{MAC}-directory.xml", body=b"<directory/>")[0] == 403


@pytest.mark.parametrize("path", [
    "/", "/bootstrap/", "/firmware/", "/firmware/5.9.7/", "/contacts/",
    "/.polygen-manifest.json", "/.polygen-build.json", "/ua-index.json", f"/{MAC}.cfg", f"/{MAC}-web.cfg",
    "/000000000000-license.cfg", f"/{MAC.upper()}-phone.cfg", "/bootstrap/.hidden.cfg",
])
def test_not_served(served, path):
    status, body = request(served, "GET", path)
    assert status == 404
    assert b"manifest" not in body and b"Index of" not in body


@pytest.mark.parametrize("path", [
    "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt", "/bootstrap/..%2f..%2fsecret.txt",
    "/firmware/5.9.7/..%2f..%2f.polygen-manifest.json", "/firmware/5.9.7/%2e%2e/%2e%2e/.polygen-manifest.json",
    "/firmware/%2e%2e/%2e%2e/secret.txt", "/../secret.txt", "/contacts/..%2f.polygen-manifest.json",
    "/firmware/5.9.7%2f..%2f..%2f..%2fsecret.txt",
])
def test_traversal_refused(served, path):
    status, body = request(served, "GET", path)
    assert status in (400, 403, 404)
    assert b"outside out/" not in body and b"manifest" not in body


def test_symlink_swap_is_seen_without_reload(served, out_tree):
    assert request(served, "GET", "/000000000000.cfg", ua=UA_330)[1] == b"<APPLICATION SPIP330 gen1/>\n"
    gen2 = make_generation(out_tree.parent / ".out.gens", "g000002-bbbbbbbb", "gen2")
    swap_out(out_tree, gen2)
    assert request(served, "GET", "/000000000000.cfg", ua=UA_330)[1] == b"<APPLICATION SPIP330 gen2/>\n"
    assert request(served, "GET", "/000000000000.cfg", ua=UA_UNKNOWN)[1] == b"<APPLICATION default gen2/>\n"


@pytest.mark.parametrize("path", [f"/{MAC}-boot.log", f"/logs/{MAC}-boot.log", f"/{MAC}-app.log",
                                  f"/logs/{MAC}-app.log?../../etc=1", f"/logs/..%2f{MAC}-boot.log",
                                  f"/bootstrap/%2e%2e/logs/{MAC}-app.log"])
def test_log_put_is_proxied_with_rebuilt_uri(served, sidecar, path):
    """nginx normalises the path first; the sidecar only ever sees /logs/<mac>-<kind>.log."""
    kind = "boot" if "-boot.log" in path else "app"
    status, _ = request(served, "PUT", path, body=b"0101000000|so   |2|00|hello\n")
    assert status == 204
    assert sidecar.requests == [("PUT", f"/logs/{MAC}-{kind}.log", b"0101000000|so   |2|00|hello\n")]


@pytest.mark.parametrize("method, path, expected", [
    ("GET", f"/logs/{MAC}-app.log", 403),
    ("DELETE", f"/logs/{MAC}-app.log", 403),
    ("PUT", f"/logs/{MAC}-flash.log", 404),
    ("PUT", f"/logs/{MAC.upper()}-app.log", 404),
    ("PUT", f"/logs/%2e%2e/%2e%2e/{MAC}-app.log", 400),
    ("PUT", f"/logs/x/{MAC}-app.log", 404),
    ("PUT", f"/{MAC}-phone.cfg", 403),
    ("PUT", f"/{MAC}-web.cfg", 404),
    ("DELETE", "/000000000000.cfg", 403),
    ("POST", "/site.cfg", 403),
    ("DELETE", f"/overrides/{MAC}-phone.cfg", 403),
    ("POST", f"/overrides/{MAC}-web.cfg", 403),
    ("PUT", f"/overrides/{MAC.upper()}-phone.cfg", 404),
    ("PUT", f"/overrides/{MAC}-user.cfg", 404),
    ("PUT", f"/overrides/x/{MAC}-phone.cfg", 404),
    ("GET", "/overrides/", 404),
])
def test_other_methods_and_paths_not_proxied(served, sidecar, method, path, expected):
    body = b"x" if method in ("PUT", "POST") else None
    assert request(served, method, path, body=body)[0] == expected
    assert sidecar.requests == []


def test_log_head_goes_to_the_sidecar(served, sidecar):
    assert request(served, "HEAD", f"/{MAC}-app.log")[0] == 204
    assert sidecar.requests == [("HEAD", f"/logs/{MAC}-app.log", b"")]


def test_log_put_size_cap(served, sidecar):
    assert request(served, "PUT", f"/{MAC}-app.log", body=b"x" * (1024 * 1024 + 1))[0] == 413
    assert sidecar.requests == []


OVERRIDE_BODY = b"<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity=\"3\"/></PHONE_CONFIG>"


@pytest.mark.parametrize("method, path", [
    ("PUT", f"/overrides/{MAC}-phone.cfg"), ("PUT", f"/overrides/{MAC}-web.cfg"),
    ("GET", f"/overrides/{MAC}-phone.cfg"), ("HEAD", f"/overrides/{MAC}-web.cfg"),
    ("PUT", f"/bootstrap/%2e%2e/overrides/{MAC}-phone.cfg"), ("GET", f"/overrides/{MAC}-web.cfg?x=../../site.cfg"),
])
def test_override_files_go_to_the_sidecar(served, sidecar, method, path):
    """A phone's override files, both ways, are the sidecar's (it keeps them outside out/), with
    the URI rebuilt from the strict captures."""
    body = OVERRIDE_BODY if method == "PUT" else None
    assert request(served, method, path, body=body)[0] == 204
    kind = "web" if "-web.cfg" in path else "phone"
    assert sidecar.requests == [(method, f"/overrides/{MAC}-{kind}.cfg", body or b"")]


def test_override_put_size_cap(served, sidecar):
    assert request(served, "PUT", f"/overrides/{MAC}-web.cfg", body=b"x" * (64 * 1024 + 1))[0] == 413
    assert sidecar.requests == []


def test_bootstraps_served_while_sidecar_down(tmp_path, out_tree):
    server = start_nginx(tmp_path, out_tree, sidecar=f"127.0.0.1:{free_port()}")  # nothing listens
    try:
        assert request(server, "GET", "/000000000000.cfg", ua=UA_330) == (200, b"<APPLICATION SPIP330 gen1/>\n")
        assert request(server, "GET", f"/{MAC}-phone.cfg")[0] == 200
        assert request(server, "PUT", f"/{MAC}-boot.log", body=b"x")[0] == 502
        # override files are the sidecar's alone: the phone boots without them (simulate warns)
        assert request(server, "GET", f"/overrides/{MAC}-phone.cfg")[0] == 502
    finally:
        server.stop()


# ---------------------------------------------------------------- guessing is slowed, phones are not
PHONE_OK = {"Authorization": "Basic cGhvbmU6czNjcmV0"}  # phone:s3cret
GUESSES = [f"/0004f2{n:06x}-phone.cfg" for n in range(1, 41)]  # none of them is built
PRIVATE = [f"/{MAC}-phone.cfg", "/site.cfg", f"/contacts/{MAC}-directory.xml"]
PUBLIC = ["/000000000000.cfg", "/bootstrap/VVX410.cfg", "/firmware/5.9.7/sip.ld"]


@pytest.fixture
def htpasswd_file(tmp_path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text("phone:{PLAIN}s3cret\n")
    return path


@contextlib.contextmanager
def behind(tmp_path: Path, out: Path, sidecar_config: dict | None, **kw):
    """nginx in front of the real sidecar (None: nothing listens where nginx looks for it)."""
    real = None if sidecar_config is None else RealSidecar(out, tmp_path / "logs.db", **sidecar_config).start()
    try:
        if real is not None:
            kw["sidecar"] = f"127.0.0.1:{real.port}"
        server = start_nginx(tmp_path, out, **kw)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if real is not None:
            real.stop()


def test_nginx_default_is_the_sidecars():
    from polygen.cli import nginx_cmd, serve_cmd
    from polygen.sidecar.app import DEFAULT_MISS_LIMIT

    defaults = [{p.name: p.default for p in cmd.params}["miss_limit"] for cmd in (nginx_cmd, serve_cmd)]
    assert MISS_LIMIT == DEFAULT_MISS_LIMIT == defaults[0] == defaults[1] == 20


@pytest.mark.parametrize("sidecar_config, limit", [({}, MISS_LIMIT), ({"miss_limit": 5}, 5)])
def test_guessed_macs_are_held_back_at_the_sidecars_rate(tmp_path, out_tree, sidecar_config, limit):
    """nginx counts in the sidecar's bucket: exactly its --miss-limit 404s, then 429 for every
    private name, hits included (a guesser learns nothing more), with the sidecar's Retry-After."""
    with behind(tmp_path, out_tree, sidecar_config) as server:
        statuses = [request(server, "GET", path)[0] for path in GUESSES]
        assert statuses == [404] * limit + [429] * (len(GUESSES) - limit)
        for path in PRIVATE:
            status, headers, _ = exchange(server, "GET", path)
            assert (status, headers["Retry-After"]) == (429, str(60 // limit)), path
        assert request(server, "PUT", f"/{MAC}-boot.log", body=b"x\n")[0] == 429  # the sidecar's own answer
        for path in PUBLIC:  # never held back
            assert request(server, "GET", path)[0] == 200, path
        # names nginx never serves are the same plain 404 for everybody: no guess, no token
        assert request(server, "GET", f"/{MAC}.cfg")[0] == 404


def test_wrong_passwords_are_held_back(tmp_path, out_tree, htpasswd_file):
    with behind(tmp_path, out_tree, {}, auth_file=htpasswd_file) as server:
        for _ in range(30):  # no credentials: an HTTP client's first try, not a guess
            status, headers, _ = exchange(server, "GET", "/site.cfg")
            assert (status, headers.get_all("WWW-Authenticate")) == (401, ['Basic realm="polygen"'])
        assert request(server, "GET", "/site.cfg", headers=PHONE_OK) == (200, b"<polycomConfig site/>\n")
        wrong = {"Authorization": "Basic cGhvbmU6Z3Vlc3M="}  # phone:guess
        statuses = [request(server, "GET", "/site.cfg", headers=wrong)[0] for _ in range(MISS_LIMIT + 5)]
        assert statuses == [401] * MISS_LIMIT + [429] * 5
        assert request(server, "GET", "/site.cfg", headers=PHONE_OK)[0] == 429  # the right one too, now
        assert request(server, "GET", "/000000000000.cfg")[0] == 200


def test_phones_booting_together_are_never_refused(tmp_path, out_tree, htpasswd_file):
    """60 boots at once from one address (a site behind NAT after a power cut), each with the
    names every phone asks for, missing ones included: not one 429."""
    boot = ["/0004f2a1b2c3.cfg", "/000000000000.cfg", "/firmware/5.9.7/sip.ld", *PRIVATE, f"/{MAC}-phone.cfg",
            f"/{MAC}-web.cfg", "/contacts/000000000000-directory.xml"]
    with behind(tmp_path, out_tree, {}, auth_file=htpasswd_file) as server:
        def one_phone(_):
            return [request(server, "GET", path, headers=PHONE_OK)[0] for path in boot]

        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            results = list(pool.map(one_phone, range(60)))
    assert results == [[404, 200, 200, 200, 200, 200, 200, 404, 200]] * 60


def test_sidecar_down_nginx_counts_failures_itself(tmp_path, out_tree, htpasswd_file):
    """The fallback: the same rate in nginx's own zone, but only the failures themselves get 429
    (nginx cannot hold back a client's hits by itself); phones are served as before."""
    with behind(tmp_path, out_tree, None, auth_file=htpasswd_file, miss_limit=7) as server:
        statuses = [request(server, "GET", path, headers=PHONE_OK)[0] for path in GUESSES[:10]]
        assert statuses == [404] * 7 + [429] * 3
        assert request(server, "GET", f"/{MAC}-phone.cfg", headers=PHONE_OK)[0] == 200
        for _ in range(10):
            status, headers, _ = exchange(server, "GET", "/site.cfg")
            assert (status, headers.get_all("WWW-Authenticate")) == (401, ['Basic realm="polygen"'])
        wrong = {"Authorization": "Basic cGhvbmU6Z3Vlc3M="}
        assert request(server, "GET", "/site.cfg", headers=wrong)[0] == 429  # one bucket for both kinds
        assert request(server, "GET", "/000000000000.cfg")[0] == 200


def test_miss_limit_zero_has_no_limit(tmp_path, out_tree):
    text = render_nginx(out_tree, listen=f"127.0.0.1:{free_port()}", miss_limit=0)
    assert not re.search(r"^\s*limit_req(?:_zone)? ", text, re.M) and "auth_request /_polygen/guard;" in text
    assert check_config(tmp_path, text).returncode == 0


def test_basic_auth(tmp_path, out_tree):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("phone:{PLAIN}s3cret\n")
    server = start_nginx(tmp_path, out_tree, auth_file=htpasswd)
    try:
        ok = {"Authorization": "Basic cGhvbmU6czNjcmV0"}  # phone:s3cret
        assert request(server, "GET", f"/{MAC}-phone.cfg")[0] == 401
        assert request(server, "GET", f"/{MAC}-phone.cfg", headers=ok)[0] == 200
        # bootstraps and firmware are fetched before a phone has credentials (tests/test_e2e.py)
        assert request(server, "GET", "/000000000000.cfg", ua=UA_330) == (200, b"<APPLICATION SPIP330 gen1/>\n")
        assert request(server, "GET", "/000000000000.cfg", ua=UA_330, headers=ok) == (
            200, b"<APPLICATION SPIP330 gen1/>\n")
    finally:
        server.stop()


# ---------------------------------------------------------------- CLI
def test_cli_help():
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(cli, ["nginx", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "POLYGEN_NGINX_LISTEN" in result.output


def test_cli_prints_a_config_nginx_accepts(tmp_path, out_tree):
    from click.testing import CliRunner

    from polygen.cli import cli

    listen = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["nginx", "-o", str(out_tree), "--listen", listen, "--server-name", "prov.test",
              "--sidecar", "127.0.0.1:9999"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output == render_nginx(out_tree, listen=listen, server_name="prov.test", sidecar="127.0.0.1:9999")
    assert check_config(tmp_path, result.output).returncode == 0


def test_cli_env(out_tree):
    from click.testing import CliRunner

    from polygen.cli import cli

    env = {"POLYGEN_OUT": str(out_tree), "POLYGEN_NGINX_LISTEN": "8081", "POLYGEN_SIDECAR": "127.0.0.1:8082",
           "POLYGEN_NGINX_MISS_LIMIT": "7"}
    result = CliRunner().invoke(cli, ["nginx"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "    listen 8081;\n" in result.output and "server 127.0.0.1:8082;" in result.output
    assert "zone=polygen:10m rate=7r/m;\n" in result.output
    assert "limit_req zone=polygen burst=6 nodelay;" in result.output


def test_cli_errors(tmp_path, out_tree):
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(cli, ["nginx", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path / 'out' / 'ua-index.json'} not found: run `polygen build` first "
        "(nginx serves the built out/ tree)\n"
    )
    result = CliRunner().invoke(cli, ["nginx", "-o", str(out_tree), "--tls-cert", "/c.pem"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: TLS needs both --tls-cert and --tls-key"
