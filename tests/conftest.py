"""Shared fixtures: the example inventory, a fake firmware tree, a built out/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["tests.pg"]  # the PostgreSQL fixtures: pg_cluster, pg_url

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "polycom"
EXAMPLE = ROOT / "inventory"
TEMPLATES = ROOT / "templates"


@pytest.fixture(autouse=True)
def _fixed_tz_year(monkeypatch):
    # DST rules come from the tz database for a reference year; pin it so golden files are stable
    monkeypatch.setenv("POLYGEN_TZ_YEAR", "2026")


@pytest.fixture
def inventory_dir(tmp_path) -> Path:
    """A private copy of the example inventory, safe to edit."""
    d = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, d, ignore=shutil.ignore_patterns("secrets.yaml"))
    return d


def make_firmware(dest: Path, releases=("3.1.8", "3.3.5", "4.0.15", "5.9.7")) -> Path:
    """A firmware tree shaped like Polycom's releases. The SIP 3.x releases get Polycom's own
    sip.cfg/phone1.cfg from ../shared (linked, never copied into the project)."""
    for rel in releases:
        d = dest / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / "sip.ld").write_bytes(b"\x7fFAKE-FIRMWARE " + rel.encode() * 64)
        (d / "sip.ver").write_text(rel + "\n")
        (d / "README.txt").write_text("not served\n")
        if rel.startswith("3."):
            vendor = SHARED / "vendor" / "sip-3.2.4B"
            (d / "sip.cfg").symlink_to(vendor / "sip.cfg")
            (d / "phone1.cfg").symlink_to(vendor / "phone1.cfg")
    return dest


@pytest.fixture
def firmware_dir(tmp_path) -> Path:
    return make_firmware(tmp_path / "firmware")


@pytest.fixture
def build_opts(inventory_dir, firmware_dir, tmp_path):
    from polygen.build import BuildOptions

    return BuildOptions(inventory_dir, tmp_path / "out", TEMPLATES, firmware_dir)


@pytest.fixture
def built(build_opts):
    from polygen.build import run

    run(build_opts)
    return build_opts.out
