"""The README's set-up: a clone needs nothing beside it, `make run`'s first screen says each thing
once and then what to do next, and installing polygen prints no packaging warnings.

The tests work on a copy of the repository's files (tracked, plus new ones not ignored) in a
temporary directory with nothing beside it, as a user's fresh `git clone` is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from .conftest import ROOT, VENV, clean_env, make_firmware
from .daemons import free_port

WAIT = 60.0  # generous upper bound for something that must happen


def repository_copy(dest: Path) -> Path:
    """The repository's files, as a clone of the work tree would have them, copied to ``dest``."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of polygen, to know which files are the repository's")
    listed = subprocess.run([git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():  # a tracked file deleted in the work tree is not part of it
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


# ---------------------------------------------------------------- nothing beside the clone
def test_a_clone_with_nothing_beside_it_collects_every_test(tmp_path):
    copy = repository_copy(tmp_path / "polygen")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["polygen"]
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                       cwd=copy, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", r.stdout, re.M), r.stdout[-3000:]
    assert "error" not in r.stdout.splitlines()[-1]


def test_the_firmware_fixture_is_whole_in_its_own_directory(tmp_path):
    fw = make_firmware(tmp_path / "firmware")
    assert [p for p in fw.rglob("*") if p.is_symlink()] == []
    # SIP 3.2 and older: the release's own sip.cfg and phone1.cfg; UC 3.3 and later have none
    assert ET.parse(fw / "3.1.8" / "sip.cfg").getroot().tag == "sip"
    assert ET.parse(fw / "3.1.8" / "phone1.cfg").getroot().tag == "phone1"
    assert not (fw / "3.3.5" / "sip.cfg").exists()


# ---------------------------------------------------------------- packaging
BUILD = """\
import json, warnings
from setuptools import build_meta
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    wheels = [build_meta.build_editable("dist"), build_meta.build_wheel("dist")]
hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)  # Python hides these
print(json.dumps({"wheels": wheels, "warnings": [f"{w.category.__name__}: {str(w.message).strip()}"
                                                 for w in caught if not issubclass(w.category, hidden)]}))
"""


def test_installing_polygen_prints_no_setuptools_warning(tmp_path):
    """What `pip install -e .` (make venv) and `pip install .` (the deployment guide) run, in-process:
    setuptools warns through `warnings`, which pip shows on the first screen of `make run`."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "polygen", src / "polygen", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-c", BUILD], cwd=src, env=clean_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.splitlines()[-1])
    assert result["warnings"] == []
    editable, wheel = (zipfile.ZipFile(src / "dist" / name).namelist() for name in result["wheels"])
    assert "__editable__.polygen-0.1.0.pth" in editable  # the checkout on sys.path, not an import hook
    assert {"polygen/cli.py", "polygen/data/params-uc.txt.gz", "polygen/data/params-sip3.txt.gz"} <= set(wheel)
    assert [n for n in wheel if not n.startswith(("polygen/", "polygen-0.1.0.dist-info/"))] == []


# ---------------------------------------------------------------- make run
class Make:
    """`make run` in a copy of the repository, with the venv running these tests; output collected."""

    def __init__(self, cwd: Path, port: int):
        make = shutil.which("make")
        if make is None or not (VENV / "bin" / "polygen").is_file():
            pytest.skip("needs make and the polygen console script beside the python running the tests")
        # -o: the venv is the one running the tests, as installed; never reinstall it from the copy
        self.proc = subprocess.Popen(
            [make, "--no-print-directory", "-o", f"{VENV}/.installed", "run", f"VENV={VENV}", f"PORT={port}"],
            cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, *patterns: str) -> None:
        """Until a line matching each pattern has been printed."""
        def seen():
            return all(any(re.search(p, ln) for ln in self.lines) for p in patterns) or self.proc.poll() is not None

        with self._changed:
            assert self._changed.wait_for(seen, timeout=WAIT), "\n".join(self.lines)
        assert self.proc.poll() is None, "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C: make and the server, its process group
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(WAIT)
        self.proc.stdout.close()


def _warning_text(line: str) -> str | None:
    """The text of a warning, printed by `polygen build` (``warning: …``) or logged by the server."""
    m = re.fullmatch(r'warning: (.*)|level=warning logger=\S+ msg="(.*)"', line)
    return (m.group(1) or m.group(2).replace('\\"', '"')) if m else None


def test_make_run_first_screen(tmp_path):
    copy = repository_copy(tmp_path / "polygen")
    port = free_port()
    make = Make(copy, port)
    try:
        make.wait_for(r"^  another port: ", r"msg=\"rebuilt: ")
        lines = list(make.lines)
        # each warning once: the build prints them, the server's first (no-op) rebuild only counts them;
        # but check, build and serve each say that the example has no provisioning auth
        warnings = Counter(t for t in map(_warning_text, lines) if t is not None)
        assert {t for t in warnings if "firmware/" in t and " not found: " in t}, lines
        no_auth = [n for t, n in warnings.items() if t.startswith("no provisioning auth: ")]
        assert no_auth == [3], lines
        assert [t for t, n in warnings.items() if n != 1 and not t.startswith("no provisioning auth: ")] == [], lines
        assert not any("Traceback" in ln or "Warning:" in ln for ln in lines), lines

        # after `listening on`, what to do next, with commands that work as printed
        at = next(i for i, ln in enumerate(lines) if "msg=\"listening on" in ln)
        block = [ln for ln in lines[at + 1:] if not ln.startswith("level=")][:6]  # the watcher logs meanwhile
        assert block[0] == f"Next steps, in another shell in {copy} (Ctrl-C here stops the server):", block
        assert block[1] == (f"  the server:     http://127.0.0.1:{port}/ serves out/, "
                            "rebuilt when inventory/ changes")
        assert block[5] == f"  another port:   PORT={port + 1} make run, or --port {port + 1}"
        simulate = block[2].removeprefix("  boot a phone:   ")
        assert simulate.endswith(f" simulate --url http://127.0.0.1:{port}/ --mac 00:04:f2:00:03:30 --model IP330 "
                                 "--allow-missing-firmware"), block
        logs, where = block[3].removeprefix("  read its logs:  ").split("   ")
        assert where == "(the phones' uploads are stored in polygen-logs.db)"
        booted = subprocess.run(shlex.split(simulate), cwd=copy, env=clean_env(), capture_output=True, text=True,
                                timeout=WAIT)
        assert booted.returncode == 0 and booted.stdout.splitlines()[-1] == "  result: OK", booted.stdout
        shown = subprocess.run(shlex.split(logs), cwd=copy, env=clean_env(), capture_output=True, text=True,
                               timeout=WAIT)
        assert shown.returncode == 0, shown.stderr
        assert " 0004f2000330 boot:1 " in shown.stdout, shown.stdout
        status, about = block[4].removeprefix("  see the fleet:  ").split("   ")
        assert about == "(every phone's state; --html status.html writes a page)"
        deadline = time.monotonic() + WAIT  # the server writes what it saw every few seconds
        while True:
            fleet = subprocess.run(shlex.split(status), cwd=copy, env=clean_env(), capture_output=True, text=True,
                                   timeout=WAIT)
            assert fleet.returncode == 0, fleet.stderr
            if re.search(r"^ok +0004f2000330 +IP330 +IP330 ", fleet.stdout, re.M) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert re.search(r"^ok +0004f2000330 +IP330 +IP330 ", fleet.stdout, re.M), fleet.stdout
    finally:
        make.stop()
    assert (copy / "firmware").is_dir()  # watched from the start: unpacking a release there rebuilds


def test_the_readme_shows_the_block_make_run_prints(tmp_path, monkeypatch):
    """The set-up section quotes `make run`'s next steps: they are what serve prints for the example."""
    from polygen.build import BuildOptions, run
    from polygen.nextsteps import next_steps

    block = re.search(r"```console\n\$ make run\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "no console block starting with `$ make run`"
    shown = block.group(1).splitlines()
    start = next(i for i, ln in enumerate(shown) if ln.startswith("Next steps, in another shell in "))
    cwd = Path(re.match(r"Next steps, in another shell in (\S+) ", shown[start]).group(1))
    shutil.copytree(ROOT / "inventory", tmp_path / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    (tmp_path / "firmware").mkdir()  # as shipped: no firmware unpacked yet
    monkeypatch.chdir(tmp_path)
    run(BuildOptions(Path("inventory"), Path("out"), ROOT / "templates", Path("firmware")))
    got = next_steps(host="127.0.0.1", port=8080, out=Path("out"), db=Path("polygen-logs.db"),
                     inventory=Path("inventory"), watch=True, prog=".venv/bin/polygen", cwd=cwd)
    assert shown[start:start + 6] == got.splitlines()


# ---------------------------------------------------------------- CI
def test_ci_runs_make_test_in_a_clone_with_nothing_beside_it(tmp_path):
    """.ci/run with a `make` that records where it ran and fails the tests: the clone is alone in
    its directory, `make lint` then `make test` (the README's command), the status comes back, the
    clone is removed."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of polygen")
    bin_dir, tmp, record = tmp_path / "bin", tmp_path / "tmp", tmp_path / "record"
    bin_dir.mkdir()
    tmp.mkdir()
    (bin_dir / "make").write_text('#!/bin/sh\n{ pwd; ls -A ..; echo "$@"; } >> "$RECORD"\n'
                                  '[ "$1" = lint ] && exit 0\nexit 7\n')
    (bin_dir / "make").chmod(0o755)
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", TMPDIR=str(tmp), RECORD=str(record))
    r = subprocess.run(["sh", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 7, r.stderr
    lint_where, lint_beside, lint, where, beside, args = record.read_text().splitlines()
    assert re.fullmatch(re.escape(str(tmp)) + r"/[^/]+/polygen", where) and lint_where == where
    assert (lint_beside, lint, beside, args) == ("polygen", "lint", "polygen", "test")
    assert list(tmp.iterdir()) == []
