"""Mutual TLS in the nginx config (issue 6, "Attackers"), against a real nginx with real TLS.

The test makes its own PKI with the ``openssl`` command line (``cryptography`` is not a
dependency): a root CA and an intermediate CA standing in for Poly's factory CAs, phone "device
certificates" carrying the MAC in the subject CN, a rogue CA with a certificate for the same MAC,
and a server certificate for 127.0.0.1. nginx runs on 127.0.0.1:<free port> with the config
``render_nginx`` prints, serving a small out/ tree; a tiny HTTP server stands in for the sidecar
to record which uploads nginx lets through. Clients are Python's ``ssl`` + ``http.client``
presenting a device certificate, or none.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import secrets
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from polygen.errors import PolygenError
from polygen.nginx import render_nginx
from tests.daemons import Nginx, free_port, nginx_check, require_binary, write_nginx_main_conf

MAC_A = "0004f2a1b2c3"
MAC_B = "0004f2d4e5f6"
UA = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[device]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
"""

# name -> (subject, issuer). The subjects cover the MAC formats nginx must read (or refuse).
DEVICES = {
    "a": (f"/C=US/O=Test Phones/CN={MAC_A}", "inter"),           # RFC 2253: CN=...,O=...,C=US
    "b": (f"/C=US/O=Test Phones/CN={MAC_B}", "inter"),
    "b_root": (f"/CN={MAC_B}", "root"),                          # signed by the root directly
    "a_upper": (f"/CN={MAC_A.upper()}/O=Test Phones, Inc.", "inter"),  # CN last in RFC 2253, "\,"
    "a_colons": ("/CN=00:04:F2:A1:B2:C3", "inter"),
    "a_hyphens": ("/CN=00-04-f2-a1-b2-c3", "inter"),
    "no_mac": ("/O=Test Phones/CN=ops-laptop", "inter"),         # verified, but no MAC
    "mac_in_ou": (f"/OU={MAC_A}/CN=phone", "inter"),
    "too_long": (f"/CN={MAC_A}d4", "inter"),
    "mac_suffix": (f"/CN=x{MAC_A}", "inter"),
    "escaped_cn": (f"/O=x,CN={MAC_A}/CN=other", "inter"),        # RFC 2253: CN=other,O=x\,CN=<mac>
    "rogue_a": (f"/C=US/O=Test Phones/CN={MAC_A}", "rogue"),     # right MAC, wrong CA
}


@dataclass
class Pki:
    dir: Path
    client_ca: Path     # what nginx trusts: root + intermediate
    server_cert: Path
    server_key: Path

    def device(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"


def _openssl(openssl: str, *args: str) -> None:
    result = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"openssl {' '.join(args)}:\n{result.stderr}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    openssl = require_binary("openssl")
    d = tmp_path_factory.mktemp("pki")
    cnf = d / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF)
    newkey = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")

    def self_signed(name: str, subject: str, ext: str) -> None:
        _openssl(openssl, "req", "-x509", "-config", str(cnf), "-extensions", ext, *newkey, "-days", "2",
                 "-subj", subject, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"))

    def signed(name: str, subject: str, issuer: str, ext: str) -> None:
        csr = d / f"{name}.csr"
        _openssl(openssl, "req", "-new", "-config", str(cnf), *newkey, "-subj", subject,
                 "-keyout", str(d / f"{name}.key"), "-out", str(csr))
        _openssl(openssl, "x509", "-req", "-in", str(csr), "-CA", str(d / f"{issuer}.pem"),
                 "-CAkey", str(d / f"{issuer}.key"), "-set_serial", f"0x{secrets.token_hex(8)}",
                 "-days", "2", "-extfile", str(cnf), "-extensions", ext, "-out", str(d / f"{name}.pem"))

    self_signed("root", "/O=Test Phones/CN=Test Phones Root CA", "ca")
    signed("inter", "/O=Test Phones/CN=Test Phones Device CA", "root", "ca")
    self_signed("rogue", "/O=Test Phones/CN=Test Phones Root CA", "ca")  # same name, other key
    self_signed("server", "/CN=prov.test", "server")
    for name, (subject, issuer) in DEVICES.items():
        signed(name, subject, issuer, "device")
    client_ca = d / "client-ca.pem"
    client_ca.write_text((d / "root.pem").read_text() + (d / "inter.pem").read_text())
    return Pki(d, client_ca, d / "server.pem", d / "server.key")


# ---------------------------------------------------------------- the out/ tree and a stub sidecar
@pytest.fixture(scope="module")
def out_tree(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    gen = site / ".out.gens" / "g000001-aaaaaaaa"
    files = {
        "ua-index.json": json.dumps({"version": 1, "default": "000000000000.cfg",
                                     "models": {"VVX_410": "bootstrap/VVX410.cfg"}}),
        "000000000000.cfg": "<APPLICATION default/>\n",
        "bootstrap/VVX410.cfg": "<APPLICATION VVX410/>\n",
        f"{MAC_A}-phone.cfg": "<polycomConfig reg.1.auth.password=secret-a/>\n",
        f"{MAC_B}-phone.cfg": "<polycomConfig reg.1.auth.password=secret-b/>\n",
        "site.cfg": "<polycomConfig site/>\n",
        "contacts/000000000000-directory.xml": "<directory><item_list/></directory>\n",
        "firmware/5.9.7/sip.ld": "firmware-bytes\n",
    }
    for rel, text in files.items():
        path = gen / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = site / "out"
    out.symlink_to(os.path.relpath(gen, site))
    return out


class StubSidecar:
    """Records (method, path) of what nginx forwards; answers 204."""

    def __init__(self) -> None:
        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                requests.append((self.command, self.path))
                self.send_response(204)
                self.end_headers()

            do_PUT = do_HEAD = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sidecar():
    stub = StubSidecar()
    yield stub
    stub.stop()


def render(out: Path, pki: Pki, port: int, **kw) -> str:
    kw.setdefault("client_ca", pki.client_ca)
    return render_nginx(out, listen=f"127.0.0.1:{port}", tls_cert=pki.server_cert, tls_key=pki.server_key, **kw)


def start(tmp: Path, out: Path, pki: Pki, sidecar_port: int, **kw) -> Nginx:
    require_binary("nginx")
    port = free_port()
    site_conf = tmp / "polygen.conf"
    site_conf.write_text(render(out, pki, port, sidecar=f"127.0.0.1:{sidecar_port}", **kw))
    return Nginx(write_nginx_main_conf(tmp / "nginx", [site_conf]), "127.0.0.1", port).start()


@pytest.fixture(scope="module")
def nginx_on(tmp_path_factory, out_tree, pki, sidecar):
    server = start(tmp_path_factory.mktemp("on"), out_tree, pki, sidecar.port)  # client_verify on
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx_optional(tmp_path_factory, out_tree, pki, sidecar):
    server = start(tmp_path_factory.mktemp("optional"), out_tree, pki, sidecar.port, client_verify="optional")
    yield server
    server.stop()


def fetch(server: Nginx, pki: Pki, device: str | None, path: str, method: str = "GET",
          body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    """One HTTPS request presenting ``device``'s certificate (None: no certificate)."""
    ctx = ssl.create_default_context(cafile=str(pki.server_cert))
    if device is not None:
        cert, key = pki.device(device)
        ctx.load_cert_chain(str(cert), str(key))
    conn = http.client.HTTPSConnection(server.host, server.port, context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"User-Agent": UA, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


PER_PHONE_A = [("GET", f"/{MAC_A}-phone.cfg"), ("GET", f"/contacts/{MAC_A}-directory.xml"),
               ("PUT", f"/{MAC_A}-boot.log"), ("PUT", f"/logs/{MAC_A}-app.log"), ("HEAD", f"/logs/{MAC_A}-app.log"),
               ("PUT", f"/overrides/{MAC_A}-phone.cfg"), ("GET", f"/overrides/{MAC_A}-web.cfg")]
PER_PHONE_B = [(m, p.replace(MAC_A, MAC_B)) for m, p in PER_PHONE_A]
SHARED = ["/site.cfg", "/contacts/000000000000-directory.xml"]
PUBLIC = ["/000000000000.cfg", "/bootstrap/VVX410.cfg", "/firmware/5.9.7/sip.ld"]


def statuses(server, pki, device, requests) -> list[int]:
    return [fetch(server, pki, device, path, method, body=b"log\n" if method == "PUT" else None)[0]
            for method, path in requests]


# ---------------------------------------------------------------- the config
@pytest.mark.parametrize("mode", [None, "on", "optional"])
def test_mtls_config_passes_nginx_t(tmp_path, out_tree, pki, mode):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("phone:{PLAIN}s3cret\n")
    text = render(out_tree, pki, free_port(), client_verify=mode, auth_file=htpasswd)
    assert f'ssl_client_certificate "{pki.client_ca}";' in text
    assert f"ssl_verify_client {mode or 'on'};" in text and "ssl_verify_depth 3;" in text
    assert text.count("if ($polygen_mac_ok != 1) { return 403; }") == 4  # phone.cfg, directory, logs, overrides
    assert text.count("if ($ssl_client_verify != SUCCESS) { return 403; }") == 2  # site, shared directory
    site_conf = tmp_path / "polygen.conf"
    site_conf.write_text(text)
    result = nginx_check(write_nginx_main_conf(tmp_path / "nginx", [site_conf]))
    assert result.returncode == 0, result.stderr


def test_no_mtls_lines_without_client_ca(out_tree, pki):
    text = render(out_tree, pki, 443, client_ca=None)
    assert "ssl_verify_client" not in text and "polygen_cert_mac" not in text and "polygen_mac_ok" not in text
    assert "$ssl_client" not in text  # no certificate checks (the one other `if` is the guard's)


@pytest.mark.parametrize("kw, message", [
    ({"client_ca": Path("/ca.pem")}, "mutual TLS (--client-ca) needs TLS: give --tls-cert and --tls-key too"),
    ({"client_verify": "on"}, "--client-verify needs --client-ca"),
    ({"client_ca": Path("/ca.pem"), "client_verify": "optional_no_ca", "tls_cert": Path("/c"), "tls_key": Path("/k")},
     "invalid --client-verify 'optional_no_ca': expected on or optional"),
    ({"client_ca": Path("/c$a.pem"), "tls_cert": Path("/c"), "tls_key": Path("/k")}, "nginx cannot quote"),
])
def test_bad_mtls_arguments(out_tree, kw, message):
    with pytest.raises(PolygenError) as exc:
        render_nginx(out_tree, **kw)
    assert message in str(exc.value)


# ---------------------------------------------------------------- ssl_verify_client on
def test_each_phone_gets_its_own_files_only(nginx_on, pki, sidecar):
    sidecar.requests.clear()
    assert fetch(nginx_on, pki, "a", f"/{MAC_A}-phone.cfg") == (200, b"<polycomConfig reg.1.auth.password=secret-a/>\n")
    assert fetch(nginx_on, pki, "b", f"/{MAC_B}-phone.cfg") == (200, b"<polycomConfig reg.1.auth.password=secret-b/>\n")
    assert fetch(nginx_on, pki, "a", f"/contacts/{MAC_A}-directory.xml") == (
        200, b"<directory><item_list/></directory>\n")
    assert fetch(nginx_on, pki, "a", f"/{MAC_A}-boot.log", "PUT", body=b"log\n")[0] == 204
    assert fetch(nginx_on, pki, "a", f"/logs/{MAC_A}-app.log", "HEAD")[0] == 204
    assert fetch(nginx_on, pki, "a", f"/overrides/{MAC_A}-phone.cfg", "PUT", body=b"<PHONE_CONFIG/>")[0] == 204
    assert sidecar.requests == [("PUT", f"/logs/{MAC_A}-boot.log"), ("HEAD", f"/logs/{MAC_A}-app.log"),
                                ("PUT", f"/overrides/{MAC_A}-phone.cfg")]
    # device A asking for device B's files, and the other way round: 403, nothing reaches the sidecar
    sidecar.requests.clear()
    assert statuses(nginx_on, pki, "a", PER_PHONE_B) == [403] * len(PER_PHONE_B)
    assert statuses(nginx_on, pki, "b", PER_PHONE_A) == [403] * len(PER_PHONE_A)
    assert sidecar.requests == []
    # the 403 comes before the file lookup: a MAC with no config is 403 too, not 404 (no oracle)
    assert fetch(nginx_on, pki, "a", "/0004f2ffffff-phone.cfg")[0] == 403


def test_shared_and_public_files_need_only_a_verified_certificate(nginx_on, pki):
    for device in ("a", "b_root", "no_mac"):
        for path in SHARED + PUBLIC:
            assert fetch(nginx_on, pki, device, path)[0] == 200, (device, path)
    # a verified certificate without a MAC in its CN gets no phone's files
    assert statuses(nginx_on, pki, "no_mac", PER_PHONE_A) == [403] * len(PER_PHONE_A)


def test_on_refuses_requests_without_a_certificate(nginx_on, pki, sidecar):
    sidecar.requests.clear()
    for path in SHARED + PUBLIC:
        assert fetch(nginx_on, pki, None, path)[0] == 400, path
    assert statuses(nginx_on, pki, None, PER_PHONE_A) == [400] * len(PER_PHONE_A)
    status, body = fetch(nginx_on, pki, None, f"/{MAC_A}-phone.cfg")
    assert b"No required SSL certificate was sent" in body and b"secret" not in body
    assert sidecar.requests == []


def test_certificate_from_another_ca_is_refused(nginx_on, nginx_optional, pki, sidecar):
    """Same subject (MAC A) and same CA name as the real ones, other key: nginx says 400."""
    sidecar.requests.clear()
    for server in (nginx_on, nginx_optional):
        status, body = fetch(server, pki, "rogue_a", f"/{MAC_A}-phone.cfg")
        assert status == 400 and b"secret" not in body
        assert statuses(server, pki, "rogue_a", PER_PHONE_A) == [400] * len(PER_PHONE_A)
        for path in SHARED + PUBLIC:
            assert fetch(server, pki, "rogue_a", path)[0] == 400, path
    assert sidecar.requests == []


@pytest.mark.parametrize("device", ["a_upper", "a_colons", "a_hyphens"])
def test_mac_in_cn_any_case_and_separators(nginx_on, pki, device):
    """CN 0004F2A1B2C3, 00:04:F2:A1:B2:C3 and 00-04-f2-a1-b2-c3 are all MAC A; file names are lower-case."""
    assert fetch(nginx_on, pki, device, f"/{MAC_A}-phone.cfg")[0] == 200
    assert fetch(nginx_on, pki, device, f"/contacts/{MAC_A}-directory.xml")[0] == 200
    assert statuses(nginx_on, pki, device, PER_PHONE_B) == [403] * len(PER_PHONE_B)
    # upper-case file names are not out/ names at all (the allow-list is lower-case)
    assert fetch(nginx_on, pki, device, f"/{MAC_A.upper()}-phone.cfg")[0] == 404


@pytest.mark.parametrize("device", ["mac_in_ou", "too_long", "mac_suffix", "escaped_cn"])
def test_mac_only_from_the_whole_cn(nginx_on, pki, device):
    """The MAC in another attribute, inside a longer CN, or behind an escaped comma in O is no MAC."""
    assert statuses(nginx_on, pki, device, PER_PHONE_A) == [403] * len(PER_PHONE_A)
    assert fetch(nginx_on, pki, device, "/site.cfg")[0] == 200  # still a verified certificate


# ---------------------------------------------------------------- ssl_verify_client optional
def test_optional_without_certificate_public_files_only(nginx_optional, pki, sidecar):
    sidecar.requests.clear()
    assert fetch(nginx_optional, pki, None, "/000000000000.cfg") == (200, b"<APPLICATION VVX410/>\n")
    for path in PUBLIC:
        assert fetch(nginx_optional, pki, None, path)[0] == 200, path
    for path in SHARED:
        assert fetch(nginx_optional, pki, None, path)[0] == 403, path
    assert statuses(nginx_optional, pki, None, PER_PHONE_A) == [403] * len(PER_PHONE_A)
    assert sidecar.requests == []


def test_optional_with_certificate_same_rules_as_on(nginx_optional, pki, sidecar):
    sidecar.requests.clear()
    assert fetch(nginx_optional, pki, "a", f"/{MAC_A}-phone.cfg")[0] == 200
    assert fetch(nginx_optional, pki, "a_upper", f"/{MAC_A}-phone.cfg")[0] == 200
    assert fetch(nginx_optional, pki, "a", f"/{MAC_A}-boot.log", "PUT", body=b"log\n")[0] == 204
    assert statuses(nginx_optional, pki, "a", PER_PHONE_B) == [403] * len(PER_PHONE_B)
    for path in SHARED + PUBLIC:
        assert fetch(nginx_optional, pki, "no_mac", path)[0] == 200, path
    assert sidecar.requests == [("PUT", f"/logs/{MAC_A}-boot.log")]


# ---------------------------------------------------------------- with basic auth
def test_mtls_and_basic_auth_both_apply(tmp_path, out_tree, pki):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("phone:{PLAIN}s3cret\n")
    server = start(tmp_path, out_tree, pki, free_port(), auth_file=htpasswd)
    ok = {"Authorization": "Basic cGhvbmU6czNjcmV0"}  # phone:s3cret
    try:
        assert fetch(server, pki, "a", f"/{MAC_A}-phone.cfg")[0] == 401
        assert fetch(server, pki, "a", f"/{MAC_A}-phone.cfg", headers=ok)[0] == 200
        assert fetch(server, pki, "a", f"/{MAC_B}-phone.cfg", headers=ok)[0] == 403  # credentials are not a MAC
        assert fetch(server, pki, "a", "/bootstrap/VVX410.cfg")[0] == 200
    finally:
        server.stop()


# ---------------------------------------------------------------- CLI
def test_cli_mtls_options(tmp_path, out_tree, pki):
    from click.testing import CliRunner

    from polygen.cli import cli

    listen = f"127.0.0.1:{free_port()}"
    base = ["nginx", "-o", str(out_tree), "--listen", listen, "--tls-cert", str(pki.server_cert),
            "--tls-key", str(pki.server_key)]
    result = CliRunner().invoke(cli, [*base, "--client-ca", str(pki.client_ca), "--client-verify", "optional"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == render_nginx(out_tree, listen=listen, tls_cert=pki.server_cert, tls_key=pki.server_key,
                                         client_ca=pki.client_ca, client_verify="optional")
    env = {"POLYGEN_NGINX_CLIENT_CA": str(pki.client_ca), "POLYGEN_NGINX_CLIENT_VERIFY": "on"}
    result = CliRunner().invoke(cli, base, env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "    ssl_verify_client on;\n" in result.output
    result = CliRunner().invoke(cli, ["nginx", "-o", str(out_tree), "--client-ca", str(pki.client_ca)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: mutual TLS (--client-ca) needs TLS: give --tls-cert and --tls-key too")
    result = CliRunner().invoke(cli, [*base, "--client-verify", "optional"])
    assert result.exit_code == 1 and "--client-verify needs --client-ca" in result.output
