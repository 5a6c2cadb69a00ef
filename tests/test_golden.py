"""The example inventory's build, byte for byte. Regenerate deliberately with `make golden`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from polygen.build import BuildOptions, run
from polygen.write import BUILD_RECORD, MANIFEST

from .conftest import EXAMPLE, TEMPLATES

GOLDEN = Path(__file__).parent / "golden" / "out"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in (MANIFEST, BUILD_RECORD)}


def test_example_build_matches_golden(tmp_path):
    (tmp_path / "firmware").mkdir()  # as shipped: no firmware unpacked yet
    out = tmp_path / "out"
    run(BuildOptions(EXAMPLE, out, TEMPLATES, tmp_path / "firmware"))
    got = _files(out)
    if os.environ.get("POLYGEN_REGEN_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, data in got.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    want = _files(GOLDEN)
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{rel} differs from tests/golden/out/{rel}; run `make golden` if intended"
