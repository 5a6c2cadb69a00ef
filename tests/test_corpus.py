"""The corpus of broken inventories: `polygen check` prints exactly tests/corpus/<case>/expected.txt.

Each case directory is an inventory. It is copied to a temporary directory (so that a
``secrets.yaml`` can be made mode 0600, which git cannot record, and nothing is written into the
tree), and ``polygen check -i .`` runs there with the options in ``args.txt``: file names in the
output are then relative to the case (``phones.yaml:5: …``) and the inventory itself is ``.``.
See tests/corpus/README.md. Error text is API: a change to a message shows up here as a diff.

``POLYGEN_UPDATE_CORPUS=1 pytest tests/test_corpus.py`` rewrites every expected.txt; review the
diff before committing it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.inventory import Problem

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
UPDATE = os.environ.get("POLYGEN_UPDATE_CORPUS") == "1"


def test_corpus_size():
    assert len(CASES) >= 45


def test_every_case_has_inputs_and_expectations():
    for name in CASES:
        case = CORPUS / name
        assert list(case.glob("*.yaml")), f"{name}: no *.yaml file"
        assert UPDATE or (case / "expected.txt").is_file(), f"{name}: no expected.txt"


@pytest.fixture
def run_case(tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)

    def run(name: str, *extra: str):
        case = tmp_path / name
        shutil.copytree(CORPUS / name, case)
        for secrets in case.glob("secrets.y*ml"):
            secrets.chmod(0o600)
        args = (case / "args.txt").read_text().split() if (case / "args.txt").exists() else []
        for aux in ("args.txt", "expected.txt"):
            (case / aux).unlink(missing_ok=True)
        monkeypatch.chdir(case)
        return CliRunner().invoke(cli, ["check", "-i", ".", *args, *extra], catch_exceptions=False)

    return run


@pytest.mark.parametrize("name", CASES)
def test_case(name, run_case):
    result = run_case(name)
    expected_file = CORPUS / name / "expected.txt"
    if UPDATE:
        expected_file.write_text(result.output)
    assert result.output.splitlines() == expected_file.read_text().splitlines()
    assert result.exit_code == 1
    # the summary counts the problem lines above it
    *problems, summary = result.output.splitlines()
    assert summary == f"Error: {len(problems)} problem{'s' if len(problems) != 1 else ''} in ."


@pytest.mark.parametrize("name", CASES)
def test_case_json(name, run_case):
    """--format json reports the same problems as the text output, split by severity."""
    result = run_case(name, "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert all(p["severity"] == "error" for p in doc["errors"])
    assert all(p["severity"] == "warning" for p in doc["warnings"])
    lines = [str(Problem(**p)) for p in doc["errors"] + doc["warnings"]]
    expected = (CORPUS / name / "expected.txt").read_text().splitlines()[:-1]
    assert sorted(lines) == sorted(expected)
