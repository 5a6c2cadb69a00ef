"""The per-file cache of inventory checks: same result as a fresh load, only changed files
re-read, private, self-cleaning, and robust to damage."""

from __future__ import annotations

import os
import stat

import pytest

from polygen.errors import InventoryError
from polygen.inventory import files, load


def _parsed(monkeypatch):
    calls = []
    real = files._check_file

    def spy(f, name):
        calls.append(f.name)
        return real(f, name)

    monkeypatch.setattr(files, "_check_file", spy)
    return calls


def test_cached_load_equals_a_fresh_load(inventory_dir, tmp_path):
    fresh = load(inventory_dir)
    cache = tmp_path / "cache"
    first = load(inventory_dir, cache=cache)
    again = load(inventory_dir, cache=cache)
    for inv in (first, again):
        assert inv.site == fresh.site and inv.phones == fresh.phones
        assert inv.extensions == fresh.extensions and inv.warnings == fresh.warnings


def test_only_changed_files_are_read_again(inventory_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    load(inventory_dir, cache=cache)
    calls = _parsed(monkeypatch)
    load(inventory_dir, cache=cache)
    assert calls == []
    phones = inventory_dir / "phones.yaml"
    phones.write_text(phones.read_text().replace('lines: ["1002"]', 'lines: ["1002"]\n    timezone: Europe/Berlin'))
    inv = load(inventory_dir, cache=cache)
    assert calls == ["phones.yaml"]
    assert next(p for p in inv.phones if p.mac == "0004f2000331").timezone == "Europe/Berlin"


def test_cross_file_checks_still_run_on_cached_files(inventory_dir, tmp_path):
    cache = tmp_path / "cache"
    load(inventory_dir, cache=cache)
    # a new file duplicates a MAC held in a cached file
    (inventory_dir / "more.yaml").write_text(
        "phones:\n  - {mac: 0004f2000330, model: IP331, lines: [\"1001\"]}\n")
    with pytest.raises(InventoryError) as exc:
        load(inventory_dir, cache=cache)
    assert [str(p) for p in exc.value.problems] == [
        f"{inventory_dir}/phones.yaml:3: phones[0].mac: duplicate MAC 0004f2000330 (first at {inventory_dir}/more.yaml:2)"]


def test_cache_entries_are_private_and_stale_ones_removed(inventory_dir, tmp_path):
    cache = tmp_path / "cache"
    load(inventory_dir, cache=cache)
    entries = sorted(cache.iterdir())
    assert len(entries) == 3  # one per inventory file
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(e.stat().st_mode) == 0o600 for e in entries)
    phones = inventory_dir / "phones.yaml"
    phones.write_text(phones.read_text() + "\n# a comment changes the bytes\n")
    load(inventory_dir, cache=cache)
    assert len(list(cache.iterdir())) == 3


def test_a_damaged_or_shared_entry_is_ignored(inventory_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    load(inventory_dir, cache=cache)
    entries = sorted(cache.iterdir())
    entries[0].write_bytes(b"not a pickle")
    entries[1].chmod(0o644)  # someone else could have written it: do not unpickle
    calls = _parsed(monkeypatch)
    inv = load(inventory_dir, cache=cache)
    assert len(calls) == 2 and len(inv.phones) == 4


def test_build_uses_the_cache_beside_the_generations(build_opts):
    from polygen.build import FILES_CACHE, run
    from polygen.write import gens_dir

    run(build_opts)
    assert len(list((gens_dir(build_opts.out) / FILES_CACHE).iterdir())) == 3
    assert os.path.isdir(gens_dir(build_opts.out) / FILES_CACHE)


def test_large_inventories_are_checked_in_worker_processes(inventory_dir, monkeypatch):
    serial = load(inventory_dir)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(files.os, "cpu_count", lambda: 2)
    parallel = load(inventory_dir)
    assert parallel.phones == serial.phones and parallel.extensions == serial.extensions
    (inventory_dir / "bad.yaml").write_text("phones:\n  - mac: nonsense\n")
    with pytest.raises(InventoryError) as exc:
        load(inventory_dir)
    assert any(str(p).startswith(f"{inventory_dir}/bad.yaml:2: phones[0].mac: 'nonsense' is not a MAC address")
               for p in exc.value.problems)
