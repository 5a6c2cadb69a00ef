"""polygen.exposure: the warning without provisioning auth (check, build, serve) and serve's
refusal to listen beyond loopback without it, with real servers for the cases it allows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from polygen.build import BuildOptions, run
from polygen.cli import cli
from polygen.exposure import is_loopback

from .conftest import TEMPLATES
from .daemons import free_port, wait_for_port
from .test_cli_check import no_auth_warning

AUTH = '  provisioning_auth:\n    user: phones-a\n    password: "Wq7-first-pass"\n'
RISK = ("anyone who can reach the server and knows a phone's MAC address (printed on its box, seen on the "
        "network) can download its config, SIP passwords included")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "2001:db8::1", "no-such-host.invalid"])
def test_not_loopback(host):
    assert not is_loopback(host)


@pytest.fixture
def paths(inventory_dir, firmware_dir, tmp_path):
    return BuildOptions(inventory_dir, tmp_path / "out", TEMPLATES, firmware_dir)


def common_args(opts: BuildOptions, tmp_path) -> list[str]:
    return ["-i", str(opts.inventory), "-o", str(opts.out), "-t", str(opts.templates),
            "--firmware", str(opts.firmware), "--db", str(tmp_path / "logs.db")]


def with_auth(opts: BuildOptions) -> None:
    site = opts.inventory / "site.yaml"
    site.write_text(site.read_text() + AUTH)


def test_build_warns_without_auth_and_not_with_it(paths):
    args = ["build", "-i", str(paths.inventory), "-o", str(paths.out), "-t", str(TEMPLATES),
            "--firmware", str(paths.firmware)]
    warning = no_auth_warning(f"{paths.inventory}/site.yaml")
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0 and r.stderr.endswith(warning)
    with_auth(paths)
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0 and "provisioning auth" not in r.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_serve_refuses_other_hosts_without_auth(paths, tmp_path, host):
    run(paths)
    r = CliRunner().invoke(cli, ["serve", "--host", host, *common_args(paths, tmp_path)], catch_exceptions=False)
    assert r.exit_code == 1
    assert r.stderr == (  # the error says it all: no warning before it
        f"Error: refusing to serve on {host} without provisioning auth: {RISK}. Add site.provisioning_auth to "
        f"{paths.inventory}/site.yaml and build, or pass --insecure-no-auth (POLYGEN_SERVE_INSECURE_NO_AUTH=1) "
        "to serve without it\n")
    assert not (tmp_path / "logs.db").exists()  # refused before anything started


def test_serve_refuses_a_build_older_than_its_auth(paths, tmp_path):
    """Auth in the inventory, but out/ was built before it: those files would be served openly."""
    run(paths)
    with_auth(paths)
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", *common_args(paths, tmp_path)],
                           catch_exceptions=False)
    assert r.exit_code == 1
    assert r.stderr == (
        f"Error: refusing to serve on 0.0.0.0 without provisioning auth: {RISK}. The build in {paths.out} "
        "predates site.provisioning_auth: run `polygen build` first, or pass --insecure-no-auth "
        "(POLYGEN_SERVE_INSECURE_NO_AUTH=1) to serve without it\n")


def serve(opts: BuildOptions, tmp_path, *extra: str, env: dict | None = None) -> tuple[dict, str]:
    """Run `polygen serve --host 0.0.0.0` for real; (its /healthz, its stderr)."""
    port = free_port("0.0.0.0")
    argv = [sys.executable, "-m", "polygen", "serve", "--host", "0.0.0.0", "--port", str(port),
            *common_args(opts, tmp_path), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            health = json.load(resp)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return health, err


def test_serve_listens_anywhere_with_auth(paths, tmp_path):
    with_auth(paths)
    run(paths)
    health, err = serve(paths, tmp_path)
    assert health["status"] == "ok" and "provisioning auth" not in err


def test_serve_with_watch_builds_the_auth_it_needs(paths, tmp_path):
    run(paths)
    with_auth(paths)
    health, err = serve(paths, tmp_path, "--watch")
    assert health["status"] == "ok" and "provisioning auth" not in err


@pytest.mark.parametrize("how", ["option", "env"])
def test_insecure_no_auth_serves_anywhere_with_the_warning(paths, tmp_path, how):
    run(paths)
    extra, env = (["--insecure-no-auth"], None) if how == "option" else ([], {"POLYGEN_SERVE_INSECURE_NO_AUTH": "1"})
    health, err = serve(paths, tmp_path, *extra, env=env)
    assert health["status"] == "ok"
    assert err.startswith(no_auth_warning(f"{paths.inventory}/site.yaml"))


def test_serve_help_names_the_option():
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert "--insecure-no-auth" in r.output and "POLYGEN_SERVE_INSECURE_NO_AUTH" in r.output
