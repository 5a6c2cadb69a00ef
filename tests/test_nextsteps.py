"""polygen.nextsteps: the block `polygen serve` prints once it listens, exact, for the cases that
change it, and from a real `polygen serve`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from polygen.build import BuildOptions, run
from polygen.nextsteps import example_phone, next_steps, program, url_for

from .conftest import EXAMPLE, TEMPLATES, VENV, clean_env, make_firmware
from .daemons import free_port, wait_for_port

WAIT = 30.0


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """The example as `make run` has it: inventory/, an empty firmware/, relative paths."""
    shutil.copytree(EXAMPLE, tmp_path / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    (tmp_path / "firmware").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build(site: Path) -> None:
    run(BuildOptions(Path("inventory"), Path("out"), TEMPLATES, Path("firmware")))


def steps(site: Path, **kw) -> list[str]:
    args = dict(host="127.0.0.1", port=8080, out=Path("out"), db=Path("polygen-logs.db"), inventory=Path("inventory"),
                watch=True, prog=".venv/bin/polygen", cwd=site)
    return next_steps(**{**args, **kw}).splitlines()


def test_the_example_without_firmware(site):
    build(site)
    assert steps(site) == [
        f"Next steps, in another shell in {site} (Ctrl-C here stops the server):",
        "  the server:     http://127.0.0.1:8080/ serves out/, rebuilt when inventory/ changes",
        "  boot a phone:   .venv/bin/polygen simulate --url http://127.0.0.1:8080/ --mac 00:04:f2:00:03:30 "
        "--model IP330 --allow-missing-firmware",
        "  read its logs:  .venv/bin/polygen logs   (the phones' uploads are stored in polygen-logs.db)",
        "  see the fleet:  .venv/bin/polygen status   (every phone's state; --html status.html writes a page)",
        "  another port:   PORT=8081 make run, or --port 8081",
    ]


def test_with_the_firmware_unpacked_the_flag_goes(site):
    make_firmware(site / "firmware")
    build(site)
    assert steps(site)[2] == ("  boot a phone:   .venv/bin/polygen simulate --url http://127.0.0.1:8080/ "
                              "--mac 00:04:f2:00:03:30 --model IP330")


def test_the_phone_is_one_the_build_has_as_the_inventory_spells_it(site):
    phones = site / "inventory" / "phones.yaml"
    build(site)
    # a phone added since the build is not served yet: the next one in the file is shown
    phones.write_text(phones.read_text().replace("phones:\n", "phones:\n  - {mac: 0004f2aaaaaa, model: IP330, "
                                                 'lines: ["1001"]}\n', 1).replace("model: IP330", "model: SPIP_330"))
    phone = example_phone(Path("inventory"), Path("out"))
    assert (phone.mac, phone.model, phone.firmware_missing) == ("00:04:f2:00:03:30", "SPIP_330", True)


def test_no_build_yet_and_no_inventory_give_placeholders(site):
    assert steps(site)[2] == ("  boot a phone:   .venv/bin/polygen simulate --url http://127.0.0.1:8080/ "
                              "--mac MAC --model MODEL")
    assert example_phone(site / "missing", Path("out")) is None


def test_another_database_port_host_and_no_watch(site):
    build(site)
    got = steps(site, host="0.0.0.0", port=65535, db=Path("/var/lib/polygen/logs.db"), watch=False)
    assert got[1] == "  the server:     http://127.0.0.1:65535/ serves out/"
    assert got[2].startswith("  boot a phone:   .venv/bin/polygen simulate --url http://127.0.0.1:65535/ ")
    assert got[3] == ("  read its logs:  .venv/bin/polygen logs --db /var/lib/polygen/logs.db   "
                      "(the phones' uploads are stored in /var/lib/polygen/logs.db)")
    assert got[4] == ("  see the fleet:  .venv/bin/polygen status --db /var/lib/polygen/logs.db   "
                      "(every phone's state; --html status.html writes a page)")
    assert got[5] == "  another port:   PORT=65534 make run, or --port 65534"
    assert steps(site, out=Path("/srv/out"))[4].startswith("  see the fleet:  .venv/bin/polygen status -o /srv/out   ")


def test_a_postgresql_database_is_shown_without_its_password(site):
    got = steps(site, db="postgresql://polygen:s3cret-DB@db1.example.com/polygen")
    assert got[3] == ("  read its logs:  .venv/bin/polygen logs --db 'postgresql://polygen:***@db1.example.com/polygen'"
                      "   (the phones' uploads are stored in postgresql://polygen:***@db1.example.com/polygen)")


def test_with_provisioning_auth_the_url_asks_for_the_credentials(site):
    site_yaml = site / "inventory" / "site.yaml"
    site_yaml.write_text(site_yaml.read_text().replace(
        "  settings:\n", '  provisioning_auth: {user: prov-user, password: "s3cret-PROV"}\n  settings:\n'))
    build(site)
    got = "\n".join(steps(site))
    assert "--url http://USER:PASSWORD@127.0.0.1:8080/ --mac" in got
    assert "s3cret-PROV" not in got and "prov-user" not in got


@pytest.mark.parametrize(("host", "url"), [("127.0.0.1", "http://127.0.0.1:80/"), ("::", "http://127.0.0.1:80/"),
                                           ("::1", "http://[::1]:80/"), ("prov.example.com", "http://prov.example.com:80/")])
def test_url_for(host, url):
    assert url_for(host, 80) == url


def test_program_is_the_one_running(tmp_path, monkeypatch):
    script = tmp_path / ".venv" / "bin" / "polygen"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert program(".venv/bin/polygen", cwd=tmp_path) == ".venv/bin/polygen"  # make run
    assert program(str(script), cwd=tmp_path) == ".venv/bin/polygen"
    assert program(str(script), cwd=tmp_path / "elsewhere") == str(script)
    monkeypatch.setenv("PATH", str(script.parent))
    assert program(str(script), cwd=tmp_path / "elsewhere") == "polygen"  # the one on PATH
    main = Path(__file__).parents[1] / "polygen" / "__main__.py"
    assert program(str(main), cwd=tmp_path).endswith(" -m polygen")


# ---------------------------------------------------------------- a real `polygen serve`
def serve(site: Path, before: tuple[str, ...] = (), after: tuple[str, ...] = ()
          ) -> tuple[subprocess.Popen, int, Path]:
    """The venv's `polygen [before] serve --port P [after]` in ``site``, its output in a file."""
    polygen = VENV / "bin" / "polygen"
    if not polygen.is_file():
        pytest.skip("needs the polygen console script beside the python running the tests")
    port = free_port()
    log = site / "serve.out"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(polygen), *before, "serve", "--port", str(port), "-t", str(TEMPLATES), *after],
                                cwd=site, env=clean_env(), stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT)
    return proc, port, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(WAIT)


def test_a_real_serve_prints_the_block_after_listening(site):
    build(site)
    proc, port, log = serve(site)
    try:
        deadline = time.monotonic() + WAIT
        while "  another port:" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if 'msg="listening on' in ln)
    assert lines[at + 1:at + 7] == next_steps(host="127.0.0.1", port=port, out=Path("out"), db=Path("polygen-logs.db"),
                                              inventory=Path("inventory"), watch=False,
                                              prog=program(str(VENV / "bin" / "polygen"), site), cwd=site).splitlines()


@pytest.mark.parametrize(("before", "after"), [(("-q",), ()), ((), ("--no-static",))],
                         ids=["quiet", "behind-nginx"])
def test_no_block_when_quiet_or_not_serving_the_files(site, before, after):
    build(site)
    proc, port, log = serve(site, before, after)
    try:
        wait_for_port("127.0.0.1", port, timeout=WAIT, proc=proc)
    finally:
        stop(proc)
    assert "Next steps" not in log.read_text()
