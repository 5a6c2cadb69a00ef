"""The `$ polygen …` sessions in the README's first sections are real: replay them."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

from polygen.cli import cli

from .conftest import EXAMPLE, ROOT, TEMPLATES
from .sessiontokens import Tokens

README = (ROOT / "README.md").read_text()


def session(first_command: str) -> list[str]:
    """The lines of the console block that starts with ``$ <first_command>``."""
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        if block.startswith(f"$ {first_command}\n"):
            return block.splitlines()
    raise AssertionError(f"no console block starts with $ {first_command}")


def polygen(*args: str):
    # the README runs from a checkout, where templates/ is beside inventory/
    extra = ["-t", str(TEMPLATES)] if args[0] in ("build", "diff") else []
    return CliRunner().invoke(cli, [*args, *extra], catch_exceptions=False)


def replay(lines: list[str], cwd) -> None:
    """Run each `$ …` line in ``cwd`` and compare its output with the lines shown under it
    (firmware warnings aside: the README explains them separately; digests and commits stand in
    consistently, tests/sessiontokens.py)."""
    tokens = Tokens()
    i = 0
    while i < len(lines):
        cmd = lines[i]
        assert cmd.startswith("$ "), cmd
        j = i + 1
        while j < len(lines) and not lines[j].startswith("$ "):
            j += 1
        shown = lines[i + 1:j]
        argv = cmd[2:].split()
        if argv[0] == "cat":
            got = (cwd / argv[1]).read_text().splitlines()
        else:
            assert argv[0] == "polygen", cmd
            got = [ln for ln in polygen(*argv[1:]).output.splitlines() if not ln.startswith("warning: firmware/")]
        assert got == tokens.expected(shown, got), f"{cmd}\n" + "\n".join(got)
        i = j


@pytest.fixture
def site(tmp_path, monkeypatch):
    shutil.copytree(EXAMPLE, tmp_path / "inventory")
    (tmp_path / "firmware").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_and_build_session(site):
    replay(session("polygen check"), site)


@pytest.mark.parametrize("copy", ["badinv", "dialinv"])
def test_check_errors_session(site, copy):
    """A copy of the example with the more.yaml the session shows (`cat`), then `check` on it."""
    shutil.copytree(EXAMPLE, site / copy)
    lines = session(f"cat {copy}/more.yaml")
    more = lines[1:lines.index(f"$ polygen check -i {copy}")]
    (site / copy / "more.yaml").write_text("\n".join(more) + "\n")
    replay(lines, site)


def test_diff_session(site):
    assert polygen("build").exit_code == 0
    ext = site / "inventory" / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Ada", "first_name: Augusta")
                   .replace('"s3cret-1001"', '"n3w-s3cret"'))
    replay(session("polygen diff --stat"), site)

