"""The bench's own correctness at a small size: generator counts, and what each rebuild writes.

No timings here (they live in ``make bench``); these check that the figures the bench prints
measure what they claim to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import build_bench as bb
from bench.gen import PHONES_PER_FILE, change_phone, generate, rename_extension
from polygen.build import BuildOptions, run
from polygen.inventory import load

from .conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent
N = 1200  # three floor files: 500 + 500 + 200


@pytest.fixture
def inv(tmp_path) -> Path:
    generate(tmp_path / "inventory", N, seed=3)
    return tmp_path / "inventory"


def _opts(inv: Path, tmp_path: Path) -> BuildOptions:
    fw = bb.fake_firmware(tmp_path / "firmware")
    return BuildOptions(inv, tmp_path / "out", ROOT / "templates", fw)


def test_generator_counts(tmp_path):
    g = generate(tmp_path / "inv", N, seed=3)
    assert g.phones == N
    assert len(g.files) == 1 + -(-N // PHONES_PER_FILE)
    assert g.files[0].name == "site.yaml"
    inv = load(g.dest)
    assert len(inv.phones) == N
    assert len(inv.extensions) == g.extensions
    lines = [len(p.lines) for p in inv.phones]
    assert min(lines) == 1 and max(lines) == 3
    assert sum(lines) == g.extensions  # every extension is on exactly one phone
    assert all(e.directory for e in inv.extensions.values())  # every extension in the directory
    assert all(e.secret for e in inv.extensions.values())
    models = {p.model for p in inv.phones}
    assert {"IP330", "IP331", "IP4000", "VVX410", "VVX450", "VVX500"} <= models
    assert {"sip3", "uc"} <= {inv.catalog.models[m].dialect for m in models}
    assert not [w for w in inv.warnings if "unknown" in w.message]


def test_generator_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", 700, seed=5)
    b = generate(tmp_path / "b", 700, seed=5)
    c = generate(tmp_path / "c", 700, seed=6)
    for fa, fb in zip(a.files, b.files):
        assert fa.read_bytes() == fb.read_bytes()
    assert a.files[1].read_bytes() != c.files[1].read_bytes()


def test_rebuilds_write_only_what_changed(inv, tmp_path):
    opts = _opts(inv, tmp_path)
    full = run(opts)
    gen = bb.current_gen(opts.out)
    before = bb.inodes(gen)
    assert full.written == len(full.paths) == len(before) > N  # every phone file and the shared ones

    noop = run(opts)
    assert noop.written == 0 and not noop.changed
    assert bb.current_gen(opts.out) == gen and bb.inodes(gen) == before

    mac = change_phone(inv)
    one = run(opts)
    after = bb.inodes(bb.current_gen(opts.out))
    check = bb.check_written({"written": one.written, "paths": list(one.paths)}, before, after,
                             {f"{mac}-phone.cfg"})
    assert check.ok, check.note
    assert one.paths == (f"{mac}-phone.cfg",)

    ext, emac = rename_extension(inv)
    before = after
    ren = run(opts)
    after = bb.inodes(bb.current_gen(opts.out))
    expect = {bb.DIRECTORY_FILE, f"{emac}-phone.cfg"}
    assert set(ren.paths) == expect
    assert bb.check_written({"written": ren.written, "paths": list(ren.paths)}, before, after, expect).ok
    assert "-Renamed" in (bb.current_gen(opts.out) / bb.DIRECTORY_FILE).read_text()
    assert ext in (bb.current_gen(opts.out) / f"{emac}-phone.cfg").read_text()


def test_a_changed_secret_rewrites_that_phone(inv, tmp_path):
    # the keys must see fields repr() hides, and the inventory cache must notice the edit
    opts = _opts(inv, tmp_path)
    run(opts)
    assert run(opts).written == 0  # the cached inventory is used
    path = sorted((inv / "sites").rglob("*.yaml"))[0]
    text = path.read_text()
    old = re.search(r'secret: "([0-9a-f]+)"', text).group(1)
    path.write_text(text.replace(old, "changed-password", 1))
    r = run(opts)
    assert r.written == 1
    assert "changed-password" in (bb.current_gen(opts.out) / r.paths[0]).read_text()


def test_change_phone_twice_is_still_one_phone(inv, tmp_path):
    opts = _opts(inv, tmp_path)
    run(opts)
    mac = change_phone(inv)
    assert change_phone(inv) == mac
    assert run(opts).paths == (f"{mac}-phone.cfg",)
    assert 'up.backlight.idleIntensity="3"' in (bb.current_gen(opts.out) / f"{mac}-phone.cfg").read_text()


def test_floor_writes_the_same_files_and_bytes(inv, tmp_path):
    opts = _opts(inv, tmp_path)
    run(opts)
    gen = bb.current_gen(opts.out)
    floor = bb._child_floor(str(gen), str(tmp_path / "floor"))
    files = [p for p in gen.rglob("*") if p.is_file() and not p.is_symlink()
             and p.relative_to(gen).parts[0] != "firmware"]
    assert floor["files"] == len(files)
    assert floor["bytes"] == sum(p.stat().st_size for p in files)
    assert sorted(os.listdir(tmp_path / "floor")) == sorted(set(os.listdir(gen)) - {"firmware"})


def test_bench_end_to_end_small(tmp_path):
    r = bb.bench_size(300, tmp_path / "work", bb.fake_firmware(tmp_path / "fw"), profile=False, log=lambda m: None)
    assert r["noop_check"]["ok"], r["noop_check"]
    assert r["one_check"]["ok"], r["one_check"]
    assert r["rename_check"]["ok"], r["rename_check"]
    assert r["noop"]["written"] == 0 and r["one"]["written"] == 1 and r["rename"]["written"] == 2
    text = bb.report([r])
    assert "| 300 |" in text and "Machine: CPU" in text
    assert "PASS" in text or "MISS" in text


def test_storm_small_stores_every_line(tmp_path):
    from bench import storm

    r = storm.run(40, 8, 20, tmp_path / "work", log=lambda m: None)
    assert r["errors"] == []
    assert r["requests"] == 40 * 4
    assert r["lines_sent"] == r["lines_stored"] == r["rows"] == 40 * 20
    assert r["uploads"] == 40
    assert all(len(r["latency"][k]) == 40 for k in storm.KINDS)
    text = storm.report(r)
    assert "PASS: zero lost lines" in text and "PASS: zero errors" in text


def test_storm_small_postgresql_stores_every_line(tmp_path, pg_url):
    from bench import storm

    r = storm.run(30, 8, 20, tmp_path / "work", log=lambda m: None, db=pg_url)
    assert r["errors"] == []
    assert r["lines_sent"] == r["lines_stored"] == r["rows"] == 30 * 20
    assert r["uploads"] == 30
    assert "PostgreSQL log store" in storm.report(r)


def test_storm_boot_log_lines_parse():
    from bench.storm import boot_log
    from polygen.logparse import iter_lines, parse_log_line

    lines = list(iter_lines(boot_log("0004f2000001", 200)))
    assert len(lines) == 200
    assert all(parse_log_line(line).parsed for line in lines)


# --- where a run's results go ---------------------------------------------------------------------

def checkout_copy(dest: Path) -> Path:
    """This working tree's files (tracked, or new and not ignored), as they are now, committed in a
    new repository at ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.split(b"\0")):
        src, dst = ROOT / os.fsdecode(name), dest / os.fsdecode(name)
        if src.is_file() or src.is_symlink():  # a tracked file deleted in the working tree is left out
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    git = ["git", "-c", "user.name=polygen tests", "-c", "user.email=tests@polygen.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "checkout copy"]):
        subprocess.run(git + args, cwd=dest, check=True, capture_output=True)
    return dest


def git_status(repo: Path, *args: str) -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain", *args], cwd=repo, capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def test_make_bench_leaves_tracked_files_alone_and_saves_the_run_in_bench_runs(tmp_path):
    repo = checkout_copy(tmp_path / "polygen")
    results_md = (repo / "bench" / "RESULTS.md").read_bytes()
    # -o venv: the venv running this test stands in for the copy's own .venv
    r = subprocess.run(["make", "-s", "-o", "venv", "bench", f"BIN={Path(sys.executable).parent}",
                        "BENCH_SIZES=200", "BENCH_PHONES=20", "BENCH_CONCURRENCY=4"],
                       cwd=repo, capture_output=True, text=True, env=clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = sorted((repo / "bench" / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z", runs[0].name)
    run = runs[0]
    assert sorted(p.name for p in run.iterdir()) == ["build.json", "build.md", "storm.json", "storm.md"]
    assert f"raw results: bench/runs/{run.name}/build.md, bench/runs/{run.name}/build.json\n" in r.stdout
    assert f"raw results: bench/runs/{run.name}/storm.md, bench/runs/{run.name}/storm.json\n" in r.stdout
    assert r.stdout.endswith(f"raw results of this run: bench/runs/{run.name}/\n")

    build = json.loads((run / "build.json").read_text())
    assert [s["phones"] for s in build["sizes"]] == [200] and build["sizes"][0]["noop_check"]["ok"]
    assert f"Machine: {build['machine']}" in (run / "build.md").read_text()
    assert "| 200 |" in (run / "build.md").read_text() and build["machine"].startswith("CPU ")
    storm = json.loads((run / "storm.json").read_text())
    assert storm["rows"] == storm["lines_sent"] == 20 * 200 and storm["latency_ms"]["upload"]["n"] == 20
    assert "PASS: zero lost lines" in (run / "storm.md").read_text()

    assert git_status(repo) == []  # no tracked file changed, nothing new outside the ignored
    ignored = {line[3:] for line in git_status(repo, "--ignored")}
    assert "bench/runs/" in ignored and not {p for p in ignored if "__pycache__" not in p} - {"bench/runs/"}
    assert (repo / "bench" / "RESULTS.md").read_bytes() == results_md


def test_each_run_gets_its_own_directory(tmp_path):
    from bench import rundir

    made = [rundir.run_dir(runs=tmp_path / "runs") for _ in range(3)]  # within a second or two
    assert len(set(made)) == 3 and all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert rundir.run_dir(tmp_path / "given") == (tmp_path / "given").resolve()
    assert rundir.run_dir(tmp_path / "given").is_dir()  # the second script of a run writes beside the first


def test_hardening_keeps_each_sessions_report_and_output_in_the_run(tmp_path):
    from bench import hardening

    r = hardening.run_group("bad input", ["tests/test_safetext.py"], clean_env(), tmp_path)
    assert r["rc"] == 0 and r["counts"]["tests"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hardening-bad-input.log", "hardening-bad-input.xml"]
    assert " passed" in (tmp_path / "hardening-bad-input.log").read_text()
