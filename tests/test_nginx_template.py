"""polygen.nginx's template: the generated config, byte for byte, for a set of option combinations.

The expected configs are files under tests/data/nginx/, reviewed when they change. The site's
paths are written as /SITE and the version as VERSION so the files do not depend on where the
test runs. After an intended change of the config, rewrite them with
``.venv/bin/python -m tests.test_nginx_template`` and review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from polygen import __version__
from polygen.nginx import render_nginx

DATA = Path(__file__).parent / "data" / "nginx"

INDEX = {
    "version": 1,
    "default": "000000000000.cfg",
    "models": {"SPIP_330": "bootstrap/SPIP330.cfg", "VVX_410": "bootstrap/VVX410.cfg"},
}

TLS = {"tls_cert": "tls/cert.pem", "tls_key": "tls/key.pem"}

# name -> (out/ holds a .htpasswd, render_nginx's options; paths relative to the site)
CASES: dict[str, tuple[bool, dict]] = {
    "default": (False, {}),
    "auth": (True, {}),
    "auth-file": (False, {"auth_file": "users.htpasswd"}),
    "no-auth": (True, {"auth": False}),
    "tls": (False, TLS),
    "tls-auth": (True, TLS),
    "mtls-on": (True, {**TLS, "client_ca": "tls/ca.pem"}),
    "mtls-optional": (False, {**TLS, "client_ca": "tls/ca.pem", "client_verify": "optional"}),
    "miss-limit-0": (False, {"miss_limit": 0}),
    "miss-limit-0-auth": (True, {"miss_limit": 0}),
    "miss-limit-1": (True, {"miss_limit": 1}),
    "listen-names": (False, {"listen": "192.0.2.1:8443", "server_name": "prov.example.com prov",
                             "sidecar": "[::1]:9000"}),
    "access-log": (True, {"access_log": "log/nginx.json", "server_name": "~prov.example.com prov"}),
}

PATH_OPTIONS = ("auth_file", "tls_cert", "tls_key", "client_ca", "access_log")


def render_case(site: Path, name: str) -> str:
    """The config of case ``name`` for a site made in ``site``, its paths written as /SITE."""
    htpasswd, options = CASES[name]
    out = site / "out"
    out.mkdir(parents=True)
    (out / "ua-index.json").write_text(json.dumps(INDEX))
    if htpasswd:
        (out / ".htpasswd").write_text("polygen:$apr1$xyz$abc\n")
    options = {k: (site / v if k in PATH_OPTIONS else v) for k, v in options.items()}
    text = render_nginx(out, **options)
    head = f"# polygen {__version__}:"
    assert text.startswith(head)
    return "# polygen VERSION:" + text[len(head):].replace(str(site), "/SITE")


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_is_byte_identical(tmp_path, name):
    expected = (DATA / f"{name}.conf").read_bytes()
    assert render_case(tmp_path / "site", name).encode() == expected


def test_every_fixture_is_a_case():
    assert sorted(p.stem for p in DATA.glob("*.conf")) == sorted(CASES)


def main() -> None:
    """Rewrite tests/data/nginx/ from the current code."""
    import tempfile

    DATA.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            (DATA / f"{name}.conf").write_bytes(render_case(Path(tmp) / "site", name).encode())
    print(f"wrote {len(CASES)} configs to {DATA}", file=sys.stderr)


if __name__ == "__main__":
    main()
