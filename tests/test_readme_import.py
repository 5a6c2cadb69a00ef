"""The README's "Moving an existing site in" sessions are real: replay them command by command."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.cli import cli

from .conftest import EXAMPLE, ROOT, TEMPLATES
from .sessiontokens import Tokens

README = (ROOT / "README.md").read_text()


def block_with(command: str) -> list[str]:
    """The console block of the README that runs ``$ <command> …``."""
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        if f"$ {command}" in block:
            return block.splitlines()
    raise AssertionError(f"no console block runs $ {command}")


def replay(lines: list[str], cwd) -> None:
    """Run each `$ …` line and compare what it prints (stdout and stderr, as a terminal shows
    them; firmware warnings aside) with the lines under it. `cat FILE` shows a file the README
    gives: the lines under it are written to FILE first. Digests stand in consistently
    (tests/sessiontokens.py)."""
    tokens = Tokens()
    steps: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    for command, shown in steps:
        argv = shlex.split(command)
        if argv[0] == "cat":
            (cwd / argv[1]).write_text("\n".join(shown) + "\n")
            continue
        assert argv[0] == "polygen", command
        extra = ["-t", str(TEMPLATES)] if argv[1] in ("build", "diff") else []
        r = CliRunner().invoke(cli, argv[1:] + extra, catch_exceptions=False)
        got = [ln for ln in r.output.splitlines() if not ln.startswith("warning: firmware/")]
        assert got == tokens.expected(shown, got), f"{command}\n" + "\n".join(got)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Where the README's sessions start: a checkout with the example inventory and no firmware."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLE, "inventory")
    Path("firmware").mkdir()
    return tmp_path


def test_import_csv_session(site):
    replay(block_with("polygen import csv"), site)
    # what the session says about the passwords
    assert (site / "newsite/secrets.yaml").stat().st_mode & 0o777 == 0o600
    assert not any("Wq7-ada" in f.read_text() for f in (site / "newsite").glob("*.yaml") if f.name != "secrets.yaml")


def test_import_tree_session(site):
    replay(block_with("polygen import tree"), site)
