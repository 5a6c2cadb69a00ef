"""polygen.catalog: coverage of the model families, alias forms, tokens, and ../shared/polycom/models.csv."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from polygen.catalog import BUILTIN, UA_FAMILY, Catalog, Model, dialect_of, normalise_name

MODELS_CSV = Path(__file__).resolve().parents[2] / "shared" / "polycom" / "models.csv"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


# ------------------------------------------------------------------ coverage
SOUNDPOINT = ["IP300", "IP301", "IP320", "IP321", "IP330", "IP331", "IP335", "IP430", "IP450", "IP500", "IP501",
              "IP550", "IP560", "IP600", "IP601", "IP650", "IP670"]
SOUNDSTATION = ["IP4000", "IP5000", "IP6000", "IP7000", "SSDUO"]
VVX = ["VVX101", "VVX150", "VVX201", "VVX250", "VVX300", "VVX301", "VVX310", "VVX311", "VVX350", "VVX400",
       "VVX401", "VVX410", "VVX411", "VVX450", "VVX500", "VVX501", "VVX600", "VVX601"]
TRIO = ["TRIO8300", "TRIO8500", "TRIO8800", "TRIOC60"]
CCX = ["CCX350", "CCX400", "CCX500", "CCX505", "CCX600", "CCX700"]
EDGE_E = ["E100", "E220", "E300", "E320", "E350", "E400", "E450", "E500", "E550"]


@pytest.mark.parametrize("key", SOUNDPOINT + SOUNDSTATION + VVX + TRIO + EDGE_E + CCX)
def test_catalog_covers(catalog, key):
    assert key in catalog.models


def test_the_three_original_models(catalog):
    ip330, ip331, ip4000 = (catalog.models[k] for k in ("IP330", "IP331", "IP4000"))
    # UC Software 3.3.5: the <polycomConfig> dialect, no sip.cfg (docs/polycom.md §10)
    assert (ip330.name, ip330.ua_token, ip330.token, ip330.lines, ip330.dialect) == (
        "SoundPoint IP 330", "SPIP_330", "SPIP330", 2, "uc")
    assert (ip331.name, ip331.ua_token, ip331.token, ip331.lines, ip331.dialect) == (
        "SoundPoint IP 331", "SPIP_331", "SPIP331", 2, "uc")
    assert (ip4000.name, ip4000.ua_token, ip4000.token, ip4000.lines, ip4000.dialect) == (
        "SoundStation IP 4000", "SSIP_4000", "SSIP4000", 1, "sip3")


# ------------------------------------------------------------------ names and aliases
@pytest.mark.parametrize(("name", "key"), [
    ("SPIP_330", "IP330"), ("SPIP330", "IP330"), ("IP330", "IP330"), ("ip 330", "IP330"), ("IP_330", "IP330"),
    ("SoundPoint IP 330", "IP330"), ("soundpoint-ip-330", "IP330"), ("spip_331", "IP331"),
    ("SSIP_4000", "IP4000"), ("SSIP4000", "IP4000"), ("IP 4000", "IP4000"), ("SoundStation IP 4000", "IP4000"),
    ("VVX410", "VVX410"), ("VVX_410", "VVX410"), ("vvx-410", "VVX410"), ("VVX 410", "VVX410"), ("vvx410", "VVX410"),
    ("Trio_8800", "TRIO8800"), ("Trio8800", "TRIO8800"), ("trio 8800", "TRIO8800"),
    ("RealPresence Trio 8800", "TRIO8800"),
    ("Edge_E450", "E450"), ("EdgeE450", "E450"), ("E450", "E450"), ("Poly Edge E450", "E450"),
    ("SSDuo", "SSDUO"), ("SoundStation Duo", "SSDUO"),
    ("CCX_600", "CCX600"), ("CCX600", "CCX600"), ("ccx 505", "CCX505"), ("Poly CCX 700", "CCX700"),
    ("Trio_C60", "TRIOC60"), ("TrioC60", "TRIOC60"), ("Poly Trio C60", "TRIOC60"),
])
def test_alias_forms(catalog, name, key):
    model = catalog.find(name)
    assert model is not None and model.key == key


@pytest.mark.parametrize("name", ["VVX41", "IP3300", "SPIP_999", "", "VVX-410-X", "Trio"])
def test_unknown_names(catalog, name):
    assert catalog.find(name) is None


def test_suggest(catalog):
    assert catalog.suggest("VVX41") == "VVX410"
    assert catalog.suggest("VVX4100") == "VVX410"
    assert catalog.suggest("XYZ") is None


def test_every_alias_of_every_model_resolves_to_that_model(catalog):
    # a later model must not steal an earlier model's alias
    for model in BUILTIN:
        for alias in (model.key, model.ua_token, model.token, model.name, *model.aliases):
            assert catalog.find(alias).key == model.key, alias


def test_tokens_and_keys_are_unique():
    for attr in ("key", "ua_token", "token", "name"):
        values = [getattr(m, attr) for m in BUILTIN]
        assert len(values) == len(set(values)), attr


def test_master_token_is_the_ua_token_without_underscore():
    for model in BUILTIN:
        assert model.token == model.ua_token.replace("_", "")
        assert "_" not in model.token
        assert re.fullmatch(r"[A-Za-z]+_?[A-Za-z0-9]+", model.ua_token)


def test_families():
    assert Catalog().models["IP330"].family == "PolycomSoundPointIP"
    assert Catalog().models["IP4000"].family == "PolycomSoundStationIP"
    assert Catalog().models["SSDUO"].family == "PolycomSoundStationIP"
    assert Catalog().models["VVX410"].family == "PolycomVVX"
    assert Catalog().models["TRIO8800"].family == "PolycomRealPresenceTrio"
    assert Catalog().models["E450"].family == "PolyEdge"
    assert Catalog().models["CCX600"].family == "PolyCCX"
    assert Catalog().models["TRIOC60"].family == "PolycomRealPresenceTrio"
    assert {m.family for m in BUILTIN} <= set(UA_FAMILY.values())


def test_lines_and_firmware_are_sane():
    for model in BUILTIN:
        assert 1 <= model.lines <= 34, model.key
        assert re.fullmatch(r"\d+\.\d+\.\d+", model.firmware), model.key


@pytest.mark.parametrize(("release", "dialect"), [
    ("2.1.3", "sip3"), ("3.1.8", "sip3"), ("3.2.4B", "sip3"), ("3.2.7", "sip3"), ("3.3.0", "uc"), ("3.3.5", "uc"),
    ("4.0.15", "uc"), ("5.9.7", "uc"), ("6.4.6", "uc"), ("10.1.0", "uc"), ("3", "sip3"), ("4", "uc"),
])
def test_dialect_of(release, dialect):
    assert dialect_of(release) == dialect


def test_normalise_name():
    assert normalise_name("vvx - 410") == normalise_name("VVX410") == "VVX410"
    assert normalise_name("SPIP_330") == "SPIP_330"  # underscores are folded by find, not here


def test_replace_and_add_are_per_catalog():
    mine = Catalog()
    mine.replace("IP331", firmware="3.2.7")
    assert mine.find("SPIP_331").dialect == "sip3"
    mine.add(Model("VVX999", "VVX 999", "VVX_999", 24, "6.4.6"))
    assert mine.find("vvx-999").key == "VVX999"
    fresh = Catalog()
    assert fresh.find("SPIP_331").dialect == "uc"
    assert fresh.find("VVX999") is None


# ------------------------------------------------------------------ the reference table
def _first_token(cell: str) -> str | None:
    """'SSIP_4000 (not observed)' -> 'SSIP_4000'; '2345-11500-030 / -040' -> '2345-11500-030'; '?' -> None."""
    token = re.split(r"[\s(/]", cell.strip(), maxsplit=1)[0]
    return None if token in ("", "?") else token


def _rows():
    if not MODELS_CSV.is_file():
        return []
    with MODELS_CSV.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if _first_token(r["ua_model_token"])]


needs_csv = pytest.mark.skipif(not MODELS_CSV.is_file(), reason="../shared/polycom/models.csv not present")


@needs_csv
def test_reference_table_is_read():
    rows = _rows()
    assert len(rows) >= 40
    # rows without a real UA token are left out (SoundStation Duo, VVX D60), annotated ones kept
    names = {r["model"] for r in rows}
    assert "VVX D60 (DECT base)" not in names and "SoundStation Duo" not in names
    assert "SoundStation IP 4000" in names


@needs_csv
@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["model"])
def test_reference_row_is_in_the_catalog(catalog, row):
    ua = _first_token(row["ua_model_token"])
    model = catalog.find(ua)
    assert model is not None, f"{row['model']}: UA token {ua} not in the catalog"
    assert model.ua_token == ua
    assert model.name == row["model"]
    master = _first_token(row["master_cfg_token"])
    if master:
        assert model.token == master
    family = row["ua_family"].strip()
    if family != "?":
        assert model.family == family
    part = _first_token(row["split_fw_part_number"])
    if part and model.part_number:
        assert model.part_number == part


# ------------------------------------------------------------------ unverified entries
def test_new_models_say_what_is_unverified(catalog):
    for key in CCX + ["TRIOC60"]:
        model = catalog.models[key]
        assert {"ua_token", "lines", "firmware", "part_number"} <= set(model.unverified), key
        note = model.unverified_note()
        assert note.startswith(f"{model.name}: unverified in polygen's catalog: "), note
        assert f"line count {model.lines}" in note and "part number unknown" in note
        assert f"models.{key} (ua_token, lines, firmware, part_number)" in note
    # what a public source confirms is not flagged
    assert catalog.models["VVX410"].unverified == () and catalog.models["VVX410"].unverified_note() is None
    assert catalog.models["IP330"].unverified_note() is None


def test_setting_a_field_under_models_confirms_it():
    mine = Catalog()
    m = mine.replace("CCX600", lines=24, part_number="3111-00000-001")
    assert "lines" not in m.unverified and "part_number" not in m.unverified
    assert "firmware" in m.unverified and "line count" not in m.unverified_note()
    m = mine.replace("CCX600", ua_token="CCX_600", firmware="8.1.3")
    assert m.unverified == () and m.unverified_note() is None
    assert Catalog().models["CCX600"].unverified  # the built-in catalog is untouched


def test_every_unverified_name_is_known():
    from polygen.catalog import UNVERIFIABLE

    for model in BUILTIN:
        assert set(model.unverified) <= set(UNVERIFIABLE), model.key


def test_firmware_names_part_number_first(catalog):
    assert catalog.models["VVX410"].firmware_names == ("3111-46162-001.sip.ld", "sip.ld")
    assert catalog.models["CCX600"].firmware_names == ("sip.ld",)  # part number unknown
