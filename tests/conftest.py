"""Shared fixtures: the example inventory, a fake firmware tree, a built out/, the sample User-Agents.

Everything here comes from the repository: the suite needs nothing beside the checkout.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.pg"]  # the PostgreSQL fixtures: pg_cluster, pg_url

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent  # the venv running the tests (its python is a link: not resolved)
EXAMPLE = ROOT / "inventory"
TEMPLATES = ROOT / "templates"
USER_AGENTS = Path(__file__).parent / "data" / "user-agents.tsv"

# Stand-ins for the sip.cfg and phone1.cfg of a SIP 3.x release: Polycom's shape (one root element,
# parameters as attributes of nested elements), with only the parameters the tests use.
SIP3_SIP_CFG = """\
<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<!-- polygen tests: a stand-in for a SIP 3.x release's sip.cfg -->
<sip>
  <voIpProt>
    <server voIpProt.server.1.address="" voIpProt.server.1.port=""/>
    <SIP voIpProt.SIP.outboundProxy.address=""/>
  </voIpProt>
  <tcpIpApp>
    <sntp tcpIpApp.sntp.address="" tcpIpApp.sntp.gmtOffset="0"/>
  </tcpIpApp>
  <up up.headsetMode="0"/>
  <dir dir.local.readonly=""/>
</sip>
"""
SIP3_PHONE1_CFG = """\
<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<!-- polygen tests: a stand-in for a SIP 3.x release's phone1.cfg -->
<phone1>
  <reg reg.1.displayName="" reg.1.address="" reg.1.label="" reg.1.auth.userId="" reg.1.auth.password=""
       reg.1.server.1.address="" reg.1.type="private" reg.2.displayName="" reg.2.address=""/>
  <attendant attendant.resourceList.1.address="" attendant.resourceList.1.label=""
             attendant.resourceList.1.type=""/>
</phone1>
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without POLYGEN_* options (they would change the commands a test
    runs in a subprocess), except the pinned DST reference year the suite uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGEN_") or k == "POLYGEN_TZ_YEAR"}
    env.update(extra)
    return env


def sample_user_agents() -> list[str]:
    """The User-Agents of tests/data/user-agents.tsv (real ones, each with its source)."""
    lines = USER_AGENTS.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line.strip() and not line.startswith("#")]


def tree_digest(out: Path) -> str:
    """The digest a build prints, computed from the files as a phone would fetch them: sha256
    over the sorted path, sha256 of the bytes and mode of every file in ``out`` (polygen's own
    records aside)."""
    import hashlib
    import stat

    h = hashlib.sha256()
    files = sorted(p for p in Path(out).rglob("*")
                   if p.is_file() and p.name not in (".polygen-manifest.json", ".polygen-build.json"))
    for p in sorted(files, key=lambda p: p.relative_to(out).as_posix()):
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        h.update(f"{p.relative_to(out).as_posix()}\0{sha}\0{stat.S_IMODE(p.stat().st_mode):04o}\n".encode())
    return h.hexdigest()


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


def make_firmware(dest: Path, releases=("3.1.8", "3.3.5", "4.0.15", "5.9.7"), split: dict | None = None) -> Path:
    """A firmware tree shaped like Polycom's releases: a combined sip.ld each, and stand-in
    sip.cfg/phone1.cfg for SIP 3.2 and older. ``split``: {release: [part numbers]} makes those
    releases split ones instead (``<part>.sip.ld`` files, no sip.ld)."""
    from polygen.catalog import dialect_of

    split = split or {}
    for rel in [*releases, *(r for r in split if r not in releases)]:
        d = dest / rel
        d.mkdir(parents=True, exist_ok=True)
        for name in [f"{p}.sip.ld" for p in split[rel]] if rel in split else ["sip.ld"]:
            (d / name).write_bytes(b"\x7fFAKE-FIRMWARE " + f"{rel} {name}".encode() * 32)
        (d / "sip.ver").write_text(rel + "\n")
        (d / "README.txt").write_text("not served\n")
        if dialect_of(rel) == "sip3":
            (d / "sip.cfg").write_text(SIP3_SIP_CFG)
            (d / "phone1.cfg").write_text(SIP3_PHONE1_CFG)
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
