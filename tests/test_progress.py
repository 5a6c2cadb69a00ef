"""A long build shows progress on a terminal and stays quiet when piped."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from .conftest import TEMPLATES
from .test_faults import write_inventory


def _args(tmp_path):
    (tmp_path / "fw").mkdir(exist_ok=True)
    return [sys.executable, "-m", "polygen", "build", "-i", str(tmp_path / "inv"), "-o", str(tmp_path / "out"),
            "-t", str(TEMPLATES), "--firmware", str(tmp_path / "fw")]


def on_a_terminal(tmp_path, args=None) -> str:
    return run_on_a_terminal(args or _args(tmp_path))


def run_on_a_terminal(argv: list[str]) -> str:
    """Run argv with a pseudo-terminal as stdout and stderr; what it wrote (exit status 0)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal
        os.execv(argv[0], argv)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_progress_bar_on_a_terminal(tmp_path):
    write_inventory(tmp_path / "inv", 2500, 1)
    text = on_a_terminal(tmp_path)
    assert "Building" in text and "100%" in text
    assert "2500 phones: 2506 files written" in text


def test_a_small_build_on_a_terminal_has_no_bar(tmp_path):
    write_inventory(tmp_path / "inv", 600, 1)  # progress is reported every 256 files
    text = on_a_terminal(tmp_path)
    assert "Building" not in text and "600 phones: 606 files written" in text


def test_no_progress_when_piped(tmp_path):
    write_inventory(tmp_path / "inv", 2500, 1)
    r = subprocess.run(_args(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0
    assert "Building" not in r.stdout and "Building" not in r.stderr
    assert r.stdout.startswith("2500 phones: 2506 files written")
