"""polygen simulate over HTTP against real sidecars: the report, the exit status, and a
device.prov.serverName redirect followed to a second server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from polygen.build import BuildOptions, run

from .conftest import EXAMPLE, TEMPLATES, make_firmware
from .daemons import free_port, wait_for_port

UA_IP330 = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247 Type/Application"


def serve(root: Path, out: Path, inventory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = open(root / f"serve-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "polygen", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "-o", str(out), "-i", str(inventory), "--db", str(root / f"logs-{port}.db")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    wait_for_port("127.0.0.1", port, timeout=20, proc=proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError((root / f"serve-{port}.log").read_text())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def site(tmp_path: Path, name: str, extra_site: str = "") -> tuple[Path, Path]:
    inv = tmp_path / name / "inventory"
    shutil.copytree(EXAMPLE, inv)
    if extra_site:
        f = inv / "site.yaml"
        f.write_text(f.read_text().replace("    up.headsetMode: \"0\"\n", "    up.headsetMode: \"0\"\n" + extra_site))
    fw = make_firmware(tmp_path / name / "firmware")
    out = tmp_path / name / "out"
    run(BuildOptions(inv, out, TEMPLATES, fw))
    return inv, out


def simulate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polygen", "simulate", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def servers():
    procs = []
    yield procs
    for p in procs:
        stop(p)


def test_simulate_a_phone_over_http(tmp_path, servers):
    inv, out = site(tmp_path, "a")
    proc, port = serve(tmp_path / "a", out, inv)
    servers.append(proc)
    r = simulate("--url", f"http://127.0.0.1:{port}/", "--mac", "00:04:f2:00:03:30", "--ua", UA_IP330)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"Simulating 0004f2000330 ({UA_IP330})"
    assert "  line 1: 1001 \"Ada Lovelace\" label 1001 auth 1001/******** via pbx.example.com" in lines
    assert lines[-1] == "  result: OK" and "s3cret" not in r.stdout
    # an unknown phone boots without a line: still no failure, but a warning
    r = simulate("--url", f"http://127.0.0.1:{port}/", "--mac", "0004f2999999", "--model", "IP330")
    assert "  warning: no registration: the phone will boot without a line" in r.stdout


def test_simulate_fails_when_the_server_is_unreachable(tmp_path):
    port = free_port()
    r = simulate("--url", f"http://127.0.0.1:{port}/", "--mac", "0004f2000330", "--model", "IP330")
    assert r.returncode == 1
    assert r.stderr.startswith(f"Error: cannot reach http://127.0.0.1:{port}/0004f2000330.cfg:")
    assert "Traceback" not in r.stderr


def test_simulate_follows_a_device_prov_redirect(tmp_path, servers):
    inv_b, out_b = site(tmp_path, "b")
    proc_b, port_b = serve(tmp_path / "b", out_b, inv_b)
    servers.append(proc_b)
    redirect = (f"    device.set: \"1\"\n    device.prov.serverName.set: \"1\"\n"
                f"    device.prov.serverName: \"http://127.0.0.1:{port_b}/\"\n")
    inv_a, out_a = site(tmp_path, "a", redirect)
    proc_a, port_a = serve(tmp_path / "a", out_a, inv_a)
    servers.append(proc_a)
    r = simulate("--url", f"http://127.0.0.1:{port_a}/", "--mac", "0004f2000330", "--ua", UA_IP330)
    assert r.returncode == 0, r.stdout
    masters = [ln for ln in r.stdout.splitlines() if "/000000000000.cfg" in ln]
    assert len(masters) == 2  # one boot on each server
    # server B's log database got the boot log, server A's did not
    import sqlite3

    def rows(port):
        with sqlite3.connect(tmp_path / ("a" if port == port_a else "b") / f"logs-{port}.db") as db:
            return db.execute("select count(*) from log_lines").fetchone()[0]

    assert rows(port_b) > 0 and rows(port_a) == 0  # it left A before uploading, booted on B
    assert "  result: OK" in r.stdout


def test_missing_model_or_ua_is_a_usage_error():
    r = simulate("--url", "http://127.0.0.1:1/", "--mac", "0004f2000330")
    assert r.returncode == 2 and "give exactly one of --model or --ua" in r.stderr
