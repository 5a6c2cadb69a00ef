"""The README's `polygen status` session ("Seeing the fleet") is real: the example served by
`polygen serve --watch` as `make run` runs it, the phones the text names booted against it, then
every `$ polygen …` line of the session run and compared with what the README shows (times of
day aside: they are the test's own)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from polygen.catalog import Catalog
from polygen.cli import cli
from polygen.simulate import HttpTransport, boot

from .conftest import EXAMPLE, TEMPLATES, clean_env
from .daemons import free_port, wait_for_port
from .test_readme_sessions import session

WAIT = 30.0
TIME_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def normal(lines: list[str]) -> list[str]:
    return [TIME_RE.sub("<time>", line) for line in lines]


def until(what, check, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The example as `make run` serves it: built, then `polygen serve --watch` in the checkout."""
    shutil.copytree(EXAMPLE, tmp_path / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    (tmp_path / "firmware").mkdir()
    (tmp_path / "templates").symlink_to(TEMPLATES)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    port = free_port()
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "polygen", "serve", "--watch", "--port", str(port),
                                 "--sightings-flush", "0.2"], cwd=tmp_path, env=clean_env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=WAIT, proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(WAIT)


def phones_served(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.load(r)["phones"]


def status_lines(*args: str) -> list[str]:
    return CliRunner().invoke(cli, ["status", *args]).output.splitlines()


def test_status_and_phone_add_session(served):
    port = served
    url = f"http://127.0.0.1:{port}/"
    ua = {m: Catalog().find(m).user_agent for m in ("IP330", "VVX410", "VVX411")}
    # what the text says happened: two phones of the example booted, a VVX 411 at the IP 331's
    # MAC, and a new VVX 410 nobody added yet
    for mac, model in (("0004f2000330", "IP330"), ("64167f000410", "VVX410"), ("0004f2000331", "VVX411"),
                       ("64167f000201", "VVX410")):
        boot(HttpTransport(url), mac, ua[model], firmware_required=False)
    until("the sightings", lambda: len(status_lines()) == 7 and "VVX411" in "".join(status_lines()))

    lines = session("polygen status")
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ polygen "), lines[i]
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("$ ")), len(lines))
        argv = lines[i][2:].split()[1:]
        if argv[0] == "simulate":  # the server rebuilds on its own (--watch): wait for the new phone
            until("the rebuild", lambda: phones_served(port) == 5)
            argv = [a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in argv]
        if argv[:2] == ["status", "--mac"]:  # the sightings of that boot are written every 0.2 s
            until("the boot's sightings", lambda: status_lines(*argv[1:])[1].startswith("ok "))  # noqa: B023 (called at once)
        got = CliRunner().invoke(cli, argv).output.splitlines()
        assert normal(got) == normal(lines[i + 1:j]), "\n".join([lines[i], *got])
        i = j
