"""The bench's own correctness at a small size: generator counts, and what each rebuild writes.

No timings here (they live in ``make bench``); these check that the figures the bench prints
measure what they claim to.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench import build_bench as bb
from bench.gen import PHONES_PER_FILE, change_phone, generate, rename_extension
from polygen.build import BuildOptions, run
from polygen.inventory import load

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
