"""polygen.params: known parameter names per dialect, suggestions, release-specific lists."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from polygen.errors import PolygenError
from polygen.params import ParamCatalog, catalog_for

from .conftest import make_firmware

ROOT = Path(__file__).resolve().parents[1]
# Polycom's own files, when a reference copy sits beside the repository (read, never copied):
# optional extras; everything else here runs without them
SHARED = Path(__file__).resolve().parents[2] / "shared" / "polycom"
UC_630 = SHARED / "vendor" / "uc-6.3.0.14929"
SIP_324B = SHARED / "vendor" / "sip-3.2.4B"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/polycom not present")


@pytest.fixture(scope="module")
def uc() -> ParamCatalog:
    return catalog_for("uc")


@pytest.fixture(scope="module")
def sip3() -> ParamCatalog:
    return catalog_for("sip3")


@pytest.mark.parametrize("dialect", ["uc", "sip3"])
@pytest.mark.parametrize("name", ["reg.1.address", "tcpIpApp.sntp.gmtOffset", "prov.polling.time"])
def test_known_in_both_dialects(dialect, name):
    cat = catalog_for(dialect)
    assert cat.known(name)
    assert name in cat
    assert cat.suggest(name) == name


@pytest.mark.parametrize("name", ["feature.presence.enabled", "lineKey.1.category", "prov.polling.timeRandomEnd"])
def test_uc_only_names(uc, sip3, name):
    assert uc.known(name)
    assert not sip3.known(name)


@pytest.mark.parametrize("dialect", ["uc", "sip3"])
@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("prov.poling.time", "prov.polling.time"),
        ("tcpIpApp.sntp.gmtOfset", "tcpIpApp.sntp.gmtOffset"),
        ("tcpIpAp.sntp.gmtOffset", "tcpIpApp.sntp.gmtOffset"),  # typo in the first component
        ("reg.1.adress", "reg.1.address"),
    ],
)
def test_unknown_names_get_the_closest_known_name(dialect, typo, expected):
    cat = catalog_for(dialect)
    assert not cat.known(typo)
    assert cat.suggest(typo) == expected


def test_uc_name_typo_suggested(uc):
    assert uc.suggest("feature.presense.enabled") == "feature.presence.enabled"


@pytest.mark.parametrize("name", ["totally.bogus", "", "..."])
def test_nothing_close_suggests_none(uc, name):
    assert not uc.known(name)
    assert uc.suggest(name) is None


# --- indexed names ----------------------------------------------------------------------------


def test_uc_enumerates_34_registrations(uc):
    assert uc.known("reg.34.address")
    assert not uc.known("reg.35.address")
    assert not uc.known("reg.0.address")
    assert not uc.known("reg.01.address")  # a leading zero is not an index
    assert uc.suggest("reg.35.address") == "reg.34.address"
    assert uc.suggest("reg.99.adress") == "reg.34.address"
    assert uc.suggest("lineKey.60.category") == "lineKey.48.category"


def test_nested_indices(uc, sip3):
    # UC enumerates reg.1-34 x server.1-4; SIP 3.x phone1.cfg only reg.1-6 x server.1-2
    assert uc.known("reg.12.server.2.transport")
    assert not uc.known("reg.12.server.5.transport")
    assert sip3.known("reg.6.server.2.transport")
    assert not sip3.known("reg.12.server.2.transport")
    assert sip3.suggest("reg.12.server.2.transport") == "reg.6.server.2.transport"


def test_index_fallback_fills_gaps_in_the_lists(uc, sip3):
    # phone1.cfg lists failRegistrationOn for reg.2.server.1 but not reg.1.server.1
    name = "reg.1.server.1.failOver.failRegistrationOn"
    assert name not in sip3.names
    assert sip3.known(name)
    # UC 5.9.6 reg-basic.cfg shows reg.1/reg.2.extension only; the XSD enumerates reg.1..34
    assert "reg.3.extension" not in uc.names
    assert uc.known("reg.3.extension")


def test_second_level_tables_are_not_widened(sip3):
    # ragged animation frame tables: an index counts only under a parent that enumerates it
    frames = {
        int(m.group(1))
        for n in sip3.names
        if (m := re.fullmatch(r"ind\.anim\.IP_600\.1\.frame\.(\d+)\.bitmap", n))
    }
    beyond = max(frames) + 1
    assert any(n.startswith("ind.anim.IP_600.") and f".frame.{beyond}." in n for n in sip3.names)
    assert not sip3.known(f"ind.anim.IP_600.1.frame.{beyond}.bitmap")


def test_per_model_suffixes_are_known_as_listed(uc, sip3):
    assert uc.known("call.callsPerLineKey")
    assert uc.known("call.callsPerLineKey.VVX101")
    assert uc.known("powerSaving.enable.VVX500")
    assert not uc.known("call.callsPerLineKey.VVX411")
    assert not sip3.known("call.callsPerLineKey.VVX101")


# --- catalog_for --------------------------------------------------------------------------------


def test_catalog_for_is_cached():
    assert catalog_for("uc") is catalog_for("uc")
    assert catalog_for("uc", None) is catalog_for("uc")
    assert catalog_for("sip3") is not catalog_for("uc")


def test_catalog_for_rejects_unknown_dialect():
    with pytest.raises(ValueError, match="unknown dialect 'sip2'"):
        catalog_for("sip2")  # type: ignore[arg-type]


def test_release_dir_without_lists_uses_the_shipped_list(tmp_path):
    assert catalog_for("uc", tmp_path) is catalog_for("uc")
    assert catalog_for("sip3", tmp_path) is catalog_for("sip3")


@needs_shared
def test_uc_release_xsd_replaces_the_shipped_list():
    cat = catalog_for("uc", UC_630)
    assert "polycomConfig.xsd" in cat.source
    assert cat is not catalog_for("uc")
    assert catalog_for("uc", UC_630) is cat
    assert len(cat.names) >= 17978  # the XSD's declarations, plus its Config/*.cfg templates
    for name in ("reg.1.address", "feature.presence.enabled", "lineKey.48.category",
                 "powerSaving.enable.VVX500", "device.prov.ztpEnabled"):
        assert cat.known(name), name
    assert not cat.known("reg.35.address")
    assert cat.suggest("prov.poling.time") == "prov.polling.time"
    # only in the shipped list (UC 5.9.6 reg-basic.cfg), not in this release's files
    assert not cat.known("call.callsPerLineKey.VVX101")
    assert catalog_for("uc").known("call.callsPerLineKey.VVX101")


@needs_shared
def test_sip3_release_cfgs_replace_the_shipped_list():
    cat = catalog_for("sip3", SIP_324B)
    assert cat.source.endswith("phone1.cfg")
    assert cat.known("prov.polling.time")
    assert not cat.known("feature.presence.enabled")
    assert cat.names <= catalog_for("sip3").names


def test_a_sip3_release_with_its_two_files_replaces_the_shipped_list(tmp_path):
    release = make_firmware(tmp_path / "firmware", releases=("3.1.8",)) / "3.1.8"
    cat = catalog_for("sip3", release)
    assert cat.source == f"{release / 'sip.cfg'}, {release / 'phone1.cfg'}"
    assert cat.known("up.headsetMode") and cat.known("reg.2.address")  # one from each file
    assert not cat.known("reg.3.address")  # this stand-in enumerates reg.1 and reg.2 only
    assert cat.suggest("up.headsetMod") == "up.headsetMode"


XSD = """<?xml version="1.0"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <xsd:attribute name="only.in.this.release" type="xsd:boolean"/>
  <xsd:attribute name="reg.1.address" type="xsd:string"/>
  <xsd:element name="polycomConfig"><xsd:complexType>
    <xsd:attribute ref="reg.1.address"/><xsd:anyAttribute processContents="skip"/>
  </xsd:complexType></xsd:element>
</xsd:schema>
"""


def test_xsd_at_the_release_root_and_cache_follows_edits(tmp_path):
    xsd = tmp_path / "polycomConfig.xsd"
    xsd.write_text(XSD)
    cat = catalog_for("uc", tmp_path)
    assert cat.names == {"only.in.this.release", "reg.1.address"}
    xsd.write_text(XSD.replace("only.in.this.release", "edited.name") + "\n")
    assert catalog_for("uc", tmp_path).names == {"edited.name", "reg.1.address"}


def test_sip3_release_dir(tmp_path):
    (tmp_path / "sip.cfg").write_text('<sip><a x.y="1" x.z=""><b reg.1.address=""/></a></sip>')
    cat = catalog_for("sip3", tmp_path)
    assert cat.names == {"x.y", "x.z", "reg.1.address"}


def test_unreadable_xsd_is_a_polygen_error(tmp_path):
    (tmp_path / "Config").mkdir()
    (tmp_path / "Config" / "polycomConfig.xsd").write_text("<xsd:schema")
    with pytest.raises(PolygenError, match="polycomConfig.xsd: cannot read parameter names"):
        catalog_for("uc", tmp_path)


# --- shipped data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fname", ["params-uc.txt.gz", "params-sip3.txt.gz"])
def test_shipped_lists_are_sorted_unique_names_only(fname):
    data = gzip.decompress(resources.files("polygen.data").joinpath(fname).read_bytes())
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    names = lines[:-1]
    assert names == sorted(set(names))
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)*", n)]
    assert not bad


@needs_shared
def test_shipped_lists_are_what_gen_params_produces(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_params.py"), "--shared", str(SHARED), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for fname in ("params-uc.txt.gz", "params-sip3.txt.gz"):
        shipped = (ROOT / "polygen" / "data" / fname).read_bytes()
        assert (tmp_path / fname).read_bytes() == shipped, f"{fname} is stale: run scripts/gen_params.py"
