"""Faults during a build: kill -9 at random moments, a full disk. out/ must always be the
previous build or the new one, never a mix or a partial file (issue 6).

POLYGEN_FAULT_TRIALS sets the number of kill trials (default 20; `make hardening` runs more).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polygen.write import BUILD_RECORD, MANIFEST, current_generation

from .conftest import TEMPLATES

TRIALS = int(os.environ.get("POLYGEN_FAULT_TRIALS", "20"))


def write_inventory(d: Path, phones: int, variant: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "site.yaml").write_text(
        "site:\n  name: Fault Corp\n  provisioning_url: http://prov.example.com/\n"
        "  sip_server: pbx.example.com\n  timezone: Europe/Berlin\n")
    ext = ["extensions:"]
    ph = ["phones:"]
    for i in range(phones):
        ext.append(f'  - {{ext: "{2000 + i}", first_name: "N{i}", last_name: "V{variant}", secret: "pw{i}-{variant}"}}')
        mac = f"0004f2{i:06x}"
        ph.append(f'  - {{mac: "{mac}", model: VVX410, lines: ["{2000 + i}"]}}')
    (d / "extensions.yaml").write_text("\n".join(ext) + "\n")
    (d / "phones.yaml").write_text("\n".join(ph) + "\n")


def snapshot(out: Path) -> dict[str, str]:
    """Every served file with its sha256; also checks the tree against its own manifest."""
    gen = current_generation(out)
    assert gen is not None, "out does not point to a generation"
    files = {p.relative_to(gen).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in gen.rglob("*") if p.is_file() and p.name not in (MANIFEST, BUILD_RECORD)}
    manifest = json.loads((gen / MANIFEST).read_text())["files"]
    assert set(files) == set(manifest), "generation and manifest disagree"
    for rel, sha in files.items():
        if manifest[rel][1] is not None:
            assert manifest[rel][1] == sha, f"{rel}: partial or foreign content"
    return files


def build_cmd(inv: Path, out: Path, fw: Path) -> list[str]:
    return [sys.executable, "-m", "polygen", "-q", "build", "-i", str(inv), "-o", str(out),
            "-t", str(TEMPLATES), "--firmware", str(fw)]


def polygen_build(inv: Path, out: Path, fw: Path) -> subprocess.Popen:
    return subprocess.Popen(build_cmd(inv, out, fw), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_build(inv: Path, out: Path, fw: Path) -> subprocess.CompletedProcess:
    return subprocess.run(build_cmd(inv, out, fw), capture_output=True, text=True)


def test_kill_9_during_build_leaves_old_or_new_tree(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    inv_a, inv_b = tmp_path / "a", tmp_path / "b"
    write_inventory(inv_a, 600, 1)
    write_inventory(inv_b, 600, 2)
    out = tmp_path / "out"
    # reference trees, and how long a full build takes
    t0 = time.monotonic()
    assert polygen_build(inv_b, tmp_path / "ref-b", fw).wait() == 0
    full = time.monotonic() - t0
    ref_b = snapshot(tmp_path / "ref-b")
    assert polygen_build(inv_a, out, fw).wait() == 0
    ref_a = snapshot(out)
    assert ref_a != ref_b
    rng = random.Random(1234)
    outcomes = {"old": 0, "new": 0}
    for trial in range(TRIALS):
        inv = inv_b if trial % 2 == 0 else inv_a  # alternate directions: a->b, b->a
        before = snapshot(out)
        proc = polygen_build(inv, out, fw)
        time.sleep(rng.uniform(0, full * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = snapshot(out)
        target = ref_b if inv is inv_b else ref_a
        assert after in (before, target), f"trial {trial}: out is neither the old nor the new build"
        outcomes["old" if after == before and before != target else "new"] += 1
        # bring out/ to the state the next trial expects, through a normal (completing) build
        assert polygen_build(inv, out, fw).wait() == 0
        assert snapshot(out) == target
    # the trials really interrupted builds at different moments
    assert outcomes["old"] > 0, outcomes
    print(f"kill -9 trials: {TRIALS}, interrupted before the swap: {outcomes['old']}, "
          f"after: {outcomes['new']}, failures: 0")


def test_stale_staging_of_a_killed_build_is_cleaned(tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    inv = tmp_path / "inv"
    write_inventory(inv, 50, 1)
    out = tmp_path / "out"
    assert polygen_build(inv, out, fw).wait() == 0
    stale = tmp_path / ".out.gens" / "tmp-999-1"
    stale.mkdir()
    (stale / "0004f2000000-phone.cfg").write_text("half")
    write_inventory(inv, 50, 2)
    assert polygen_build(inv, out, fw).wait() == 0
    assert not stale.exists()


@contextlib.contextmanager
def built_on_tmpfs(tmp_path: Path, size: str):
    """A 20-phone build on a small tmpfs of its own: (inventory, out, firmware, snapshot of out)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount tmpfs here (no CAP_SYS_ADMIN)")
    try:
        fw = tmp_path / "fw"
        fw.mkdir()
        inv = tmp_path / "inv"
        write_inventory(inv, 20, 1)
        out = disk / "out"
        assert polygen_build(inv, out, fw).wait() == 0
        yield inv, out, fw, snapshot(out)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_gives_a_clear_error_and_keeps_the_old_tree(tmp_path):
    with built_on_tmpfs(tmp_path, "600k") as (inv, out, fw, before):
        write_inventory(inv, 3000, 2)  # far more than 600 KiB
        proc = run_build(inv, out, fw)
        assert proc.returncode == 1
        assert proc.stderr.startswith(f"Error: writing {out} failed: no space left on the device"), proc.stderr
        assert snapshot(out) == before
        assert not [p for p in (out.parent / ".out.gens").iterdir() if p.name.startswith("tmp-")]


def test_read_only_filesystem_gives_a_clear_error(tmp_path):
    with built_on_tmpfs(tmp_path, "4m") as (inv, out, fw, before):
        subprocess.run(["mount", "-o", "remount,ro", str(out.parent)], check=True)
        write_inventory(inv, 20, 2)
        proc = run_build(inv, out, fw)
        assert proc.returncode == 1
        assert "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert snapshot(out) == before
