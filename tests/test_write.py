"""polygen.write: the owner, group and mode of everything in a generation, whatever the umask.

The group tests need root (giving a file another group); they read the files as ``nobody``
with one group or another, the way nginx reads them through its group.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from polygen import write
from polygen.build import BuildOptions, run
from polygen.write import BUILD_RECORD, MANIFEST, current_generation, gens_dir, read_manifest

from .conftest import EXAMPLE, TEMPLATES, make_firmware

PHONE = "64167f000410-phone.cfg"


@pytest.fixture(params=[0o077, 0o022], ids=["umask077", "umask022"])
def umask(request):
    old = os.umask(request.param)
    write._umask.cache_clear()  # read once per process, as a running polygen does
    yield request.param
    os.umask(old)
    write._umask.cache_clear()


@pytest.fixture
def site():
    """An inventory and firmware in a directory other users may enter (tmp_path's parents are
    private to root), so that a reader's own group is what decides."""
    d = Path(tempfile.mkdtemp(prefix="polygen-write-"))
    d.chmod(0o755)
    shutil.copytree(EXAMPLE, d / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    make_firmware(d / "firmware")
    yield d
    shutil.rmtree(d)


def options(site: Path, group: str | None = None) -> BuildOptions:
    return BuildOptions(site / "inventory", site / "out", TEMPLATES, site / "firmware", group=group)


def generation_entries(out: Path) -> tuple[list[Path], list[Path]]:
    """(directories, rendered files) of the current generation, the generation itself and
    .out.gens included; firmware links are the firmware's own files, not polygen's."""
    gen = current_generation(out)
    links = {p for p, entry in read_manifest(gen).items() if len(entry) == 4}  # a link records no owner
    dirs, files = [gens_dir(out), gen], []
    for root, dnames, fnames in os.walk(gen):
        dirs += [Path(root, n) for n in dnames]
        files += [Path(root, n) for n in fnames if str(Path(root, n).relative_to(gen)) not in links]
    return dirs, files


def modes(paths) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in paths}


def test_modes_do_not_depend_on_the_umask(umask, site):
    out = site / "out"
    run(options(site))
    dirs, files = generation_entries(out)
    assert modes(dirs) == {str(d): 0o755 for d in dirs}
    secret = {PHONE, "0004f2000330-phone.cfg", MANIFEST, BUILD_RECORD}
    assert {p.name: m for p, m in zip(files, modes(files).values()) if p.name in secret} == dict.fromkeys(secret, 0o640)
    assert modes([out / "000000000000.cfg", out / "contacts/000000000000-directory.xml"]) == {
        str(out / "000000000000.cfg"): 0o644, str(out / "contacts/000000000000-directory.xml"): 0o644}
    assert stat.S_IMODE((gens_dir(out) / "lock").stat().st_mode) == 0o600
    assert {p.stat().st_gid for p in dirs + files} == {os.getegid()}


def readable(path: Path, group: str) -> bool:
    """Can a user whose only group is ``group`` read ``path``?"""
    r = subprocess.run(["cat", str(path)], user="nobody", group=group, extra_groups=[], capture_output=True)
    return r.returncode == 0


def test_group_follows_every_build_unchanged_files_included(umask, site):
    """--group A, then --group B with nothing else changed, then no --group: after each build
    the group given, and only that group, reads the generation (its unchanged files included,
    whose inodes the previous generation shares)."""
    if os.geteuid() != 0:
        pytest.skip("giving files another group and reading them as another user needs root")
    a, b = "daemon", "bin"
    gid = {g: grp.getgrnam(g).gr_gid for g in (a, b)}
    out = site / "out"
    phone, bootstrap = out / PHONE, out / "000000000000.cfg"

    first = run(options(site, a))
    dirs, files = generation_entries(out)
    assert {p.stat().st_gid for p in dirs + files} == {gid[a]}
    assert modes(dirs) == {str(d): 0o750 for d in dirs}
    assert readable(phone, a) and readable(bootstrap, a)
    assert not readable(phone, b) and not readable(bootstrap, b)

    # an edit: the changed file is new, the others are linked from the previous generation
    ext = site / "inventory" / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Ada", "first_name: Augusta"))
    run(options(site, a))
    dirs, files = generation_entries(out)
    assert {p.stat().st_gid for p in dirs + files} == {gid[a]}

    before, old_gen = phone.stat(), current_generation(out)
    second = run(options(site, b))
    assert second.generation != first.generation
    dirs, files = generation_entries(out)
    assert {p.stat().st_gid for p in dirs + files} == {gid[b]}
    assert modes(dirs) == {str(d): 0o750 for d in dirs}
    assert readable(phone, b) and readable(bootstrap, b)
    assert not readable(phone, a) and not readable(bootstrap, a)
    after = phone.stat()
    assert after.st_ino != before.st_ino and after.st_mtime_ns == before.st_mtime_ns  # same bytes, new inode
    assert not readable(old_gen / PHONE, a)  # nor through the generation kept for rollback
    old_gen = current_generation(out)

    run(options(site))
    dirs, files = generation_entries(out)
    assert {p.stat().st_gid for p in dirs + files} == {os.getegid()}
    assert modes(dirs) == {str(d): 0o755 for d in dirs}
    assert not readable(phone, a) and not readable(phone, b)
    assert not readable(old_gen / PHONE, b)
    assert readable(bootstrap, b)  # public files stay public without a group
    assert run(options(site)).changed is False  # and stay put from then on
