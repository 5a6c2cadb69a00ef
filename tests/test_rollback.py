"""`polygen rollback` (polygen.write.rollback): out swapped back to the generation the current
one replaced, atomically; clear errors when there is none; unattended rebuilds that leave the
rollback in place until the inventory changes, and deliberate builds that end it."""

from __future__ import annotations

import os

from click.testing import CliRunner

from polygen.build import run
from polygen.cli import cli
from polygen.watch import make_build
from polygen.write import ROLLBACK_HOLD, current_generation, gens_dir, read_record, served_commit

from .conftest import TEMPLATES, tree_digest


def rollback(out):
    return CliRunner().invoke(cli, ["rollback", "-o", str(out)], catch_exceptions=False)


def rename_ada(opts, name: str) -> None:
    ext = opts.inventory / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Ada", f"first_name: {name}"))


def test_rollback_serves_the_generation_before(build_opts):
    out = build_opts.out
    run(build_opts)
    first = tree_digest(out)
    rename_ada(build_opts, "Augusta")
    second = run(build_opts)
    assert second.generation == "g000002" and tree_digest(out) != first

    r = rollback(out)
    assert (r.exit_code, r.stdout) == (0, (
        f"rolled back: {out} serves g000001 again, instead of g000002\n"
        "watch and serve --watch leave it so until the inventory, templates or firmware change; "
        "`polygen build` serves the inventory again\n"))
    assert os.readlink(out) == ".out.gens/g000001" and tree_digest(out) == first
    assert (gens_dir(out) / "g000002").is_dir()  # kept: a build serves it again in a moment

    r = rollback(out)
    assert (r.exit_code, r.stderr) == (1, (
        f"Error: nothing to roll back to: {out} serves g000001, and the generation before it is not kept "
        "(polygen keeps the current build and the one it replaced)\n"))
    assert os.readlink(out) == ".out.gens/g000001"


def test_rollback_without_a_build_or_without_a_previous_one(build_opts):
    r = rollback(build_opts.out)
    assert (r.exit_code, r.stderr) == (1, f"Error: nothing to roll back: '{build_opts.out}' has no build yet\n")
    run(build_opts)
    r = rollback(build_opts.out)
    assert (r.exit_code, r.stderr) == (1, (
        f"Error: nothing to roll back to: {build_opts.out} serves g000001, and the generation before it is not "
        "kept (polygen keeps the current build and the one it replaced)\n"))


def test_rollback_returns_to_what_the_current_build_replaced(build_opts):
    """g1, g2, rollback to g1, then g3 built over g1: rolling g3 back serves g1, not g2."""
    out = build_opts.out
    run(build_opts)
    rename_ada(build_opts, "Augusta")
    run(build_opts)
    assert rollback(out).exit_code == 0
    ext = build_opts.inventory / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Augusta", "first_name: Ada Augusta"))
    assert run(build_opts).generation == "g000003"
    assert read_record(current_generation(out))["previous"] == "g000001"
    assert rollback(out).stdout.startswith(f"rolled back: {out} serves g000001 again, instead of g000003\n")


def test_unattended_rebuilds_leave_a_rollback_until_the_inventory_changes(build_opts):
    """The watcher's build (make_build) after a rollback: the same inventory again builds what
    was taken down, and swaps nothing; a change goes live; so does a build by hand."""
    out = build_opts.out
    run(build_opts)
    rename_ada(build_opts, "Augusta")
    run(build_opts)
    rollback(out)
    unattended = make_build(build_opts)
    result = unattended()
    assert result.held and not result.changed and result.generation == "g000001"
    assert result.summary() == (
        "4 phones: not served, it is what `polygen rollback` took down; a new commit or `polygen build` serves "
        f"the inventory again (generation g000001, digest {tree_digest(out)[:16]})")
    assert os.readlink(out) == ".out.gens/g000001"

    ext = build_opts.inventory / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Augusta", "first_name: Ada Augusta"))
    fixed = unattended()
    assert fixed.changed and fixed.generation == "g000003" and not (gens_dir(out) / ROLLBACK_HOLD).exists()


def test_a_build_by_hand_ends_the_rollback(build_opts):
    out = build_opts.out
    run(build_opts)
    rename_ada(build_opts, "Augusta")
    taken_down = run(build_opts)
    rollback(out)
    again = run(build_opts)  # deliberate: what was taken down is served again
    assert again.generation == "g000003" and again.digest == taken_down.digest
    assert not (gens_dir(out) / ROLLBACK_HOLD).exists()
    assert make_build(build_opts)().generation == "g000003"


def test_rollback_and_rebuild_keep_modes_and_bytes(build_opts, tmp_path):
    """What a rollback serves is the generation as it was built: same digest as a fresh build
    of that inventory elsewhere."""
    from polygen.build import BuildOptions

    run(build_opts)
    fresh = run(BuildOptions(build_opts.inventory, tmp_path / "elsewhere", TEMPLATES, build_opts.firmware))
    rename_ada(build_opts, "Augusta")
    run(build_opts)
    rollback(build_opts.out)
    assert tree_digest(build_opts.out) == fresh.digest == tree_digest(tmp_path / "elsewhere")
    assert served_commit(build_opts.out) is None
