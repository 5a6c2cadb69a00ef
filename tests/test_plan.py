"""polygen.plan: what out/ holds, from the inventory and a listing of the firmware releases.

plan() reads no firmware directory: the releases come as ``polygen.firmware.read_releases``
lists them, so a listing of files that do not exist plans exactly as one of files that do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from polygen.catalog import Catalog
from polygen.errors import BuildError
from polygen.firmware import ReleaseFile, read_releases
from polygen.inventory import load
from polygen.plan import config_files, plan
from polygen.render import Renderer
from tests.conftest import EXAMPLE, TEMPLATES, make_firmware


@pytest.fixture(scope="module")
def inv():
    return load(EXAMPLE)


def _listing(inv, root: Path) -> dict[str, tuple[ReleaseFile, ...]]:
    """Every release the example runs, as listed, its files under ``root`` (which need not exist)."""
    return {m.firmware: tuple(ReleaseFile(n, root / m.firmware / n, (f"{root}/{m.firmware}/{n}", 10, 1))
                              for n in ("README.txt", "sip.ld", "sip.ver"))
            for m in inv.models_in_use()}


def test_plan_reads_no_firmware_directory(inv, tmp_path):
    nowhere = tmp_path / "not-there"
    p = plan(inv, Renderer(TEMPLATES), _listing(inv, nowhere))
    files = {f.path: f for f in p.files()}
    assert files["firmware/5.9.7/sip.ld"].link == nowhere / "5.9.7" / "sip.ld"
    assert "firmware/5.9.7/sip.ver" in files and "firmware/5.9.7/README.txt" not in files
    assert len(files) == p.count


def test_a_links_key_follows_its_files_identity(inv, tmp_path):
    listing = _listing(inv, tmp_path)
    before = {f.path: f.key for f in plan(inv, Renderer(TEMPLATES), listing).files()}
    listing["5.9.7"] = tuple(dataclasses.replace(f, identity=(f.identity[0], 11, 1)) if f.name == "sip.ld" else f
                             for f in listing["5.9.7"])
    after = {f.path: f.key for f in plan(inv, Renderer(TEMPLATES), listing).files()}
    assert {p for p in before if before[p] != after[p]} == {"firmware/5.9.7/sip.ld"}


def test_a_broken_link_phones_fetch_is_refused(inv, tmp_path):
    listing = _listing(inv, tmp_path)
    listing["5.9.7"] += (ReleaseFile("x.sip.ld", tmp_path / "x.sip.ld", None, "x.sip.ld: a broken link"),)
    with pytest.raises(BuildError, match="x.sip.ld: a broken link"):
        list(plan(inv, Renderer(TEMPLATES), listing).files())


def test_sip3_config_files_are_the_listed_ones():
    model = next(m for m in Catalog().models.values() if m.dialect == "sip3")
    listed = {model.firmware: (ReleaseFile("sip.cfg", Path("sip.cfg"), ("sip.cfg", 1, 1)),
                               ReleaseFile("phone1.cfg", Path("phone1.cfg"), None, "broken"))}
    assert config_files(model, listed).endswith(f"-phone.cfg, site-sip3.cfg, firmware/{model.firmware}/sip.cfg")
    assert config_files(model, {}) == "[PHONE_MAC_ADDRESS]-phone.cfg, site-sip3.cfg"


def test_read_releases(tmp_path):
    fw = make_firmware(tmp_path / "fw", releases=("5.9.7", "3.1.8"))
    rel = fw / "5.9.7"
    (rel / "sub").mkdir()
    (rel / "link.ld").symlink_to("sip.ld")
    (rel / "gone.ld").symlink_to("nothing")
    listing = read_releases(fw, ["5.9.7", "5.9.7", "9.9.9"])
    assert list(listing) == ["5.9.7"]  # asked for once; a release not unpacked is not listed
    files = {f.name: f for f in listing["5.9.7"]}
    assert sorted(files) == ["README.txt", "gone.ld", "link.ld", "sip.ld", "sip.ver"]
    st = (rel / "sip.ld").stat()
    assert files["sip.ld"].identity == (str((rel / "sip.ld").resolve()), st.st_size, st.st_mtime_ns)
    assert files["link.ld"].identity == files["sip.ld"].identity and files["link.ld"].path == rel / "link.ld"
    assert files["gone.ld"].identity is None and "broken symbolic link (to nothing)" in files["gone.ld"].broken
    assert read_releases(None, ["5.9.7"]) == {}
