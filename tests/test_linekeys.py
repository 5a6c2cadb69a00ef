"""Shared lines, busy lamp fields, speed dials and the read-only directory (polygen/linekeys.py).

What the phone ends up with is judged through its boot (polygen.simulate over the built tree:
CONFIG_FILES in order, first value wins, the directory it fetches); what `polygen check` says, by
its exact output.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.build import BuildOptions, run
from polygen.catalog import Catalog
from polygen.cli import cli
from polygen.directory import directory_entries, phone_directory
from polygen.inventory import Key, Phone, load
from polygen.linekeys import directory_limit
from polygen.simulate import TreeTransport, boot, format_report

from .conftest import TEMPLATES, make_firmware
from .test_inventory import SITE

UA = {
    "IP330": "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247 Type/Application",
    "IP331": "FileTransport PolycomSoundPointIP-SPIP_331-UA/4.0.15.1009 Type/Application",
    "IP4000": "FileTransport PolycomSoundStationIP-SSIP_4000-UA/3.1.8.0070",
    "VVX410": "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application",
}
EXTS = """\
extensions:
  - {ext: "1001", first_name: Ada, last_name: Lovelace, secret: s1}
  - {ext: "1002", first_name: Charles, last_name: Babbage, secret: s2}
  - {ext: "1003", first_name: Front, last_name: Desk, secret: s3, shared: true}
  - {ext: "1004", first_name: Grace, last_name: Hopper, secret: s4}
  - {ext: "1005", first_name: Alan, last_name: Turing, secret: s5}
"""
PHONES = """\
phones:
  - mac: 64:16:7f:00:04:10
    model: VVX410
    lines: ["1001", "1003"]
    keys:
      - blf: "1002"
      - speed_dial: {number: "+15551234567", label: Lobby}
      - blf: "1004"
      - speed_dial: {number: "1002"}
  - mac: 00:04:f2:00:03:31
    model: IP331
    lines: ["1003"]
  - mac: 00:04:f2:00:03:30
    model: IP330
    lines: ["1004"]
    keys:
      - blf: "1002"
  - mac: 00:04:f2:00:40:00
    model: IP4000
    lines: ["1005"]
"""


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    merged = {"site.yaml": SITE, "extensions.yaml": EXTS, "phones.yaml": PHONES}
    merged.update({k.replace("__", "."): v for k, v in files.items()})
    for name, text in merged.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def out(tmp_path) -> Path:
    inv = write(tmp_path / "inventory")
    out = tmp_path / "out"
    run(BuildOptions(inv, out, TEMPLATES, make_firmware(tmp_path / "firmware")))
    return out


def phone_boot(out: Path, mac: str, model: str):
    r = boot(TreeTransport(out), mac, UA[model])
    assert r.ok, format_report(r)
    return r


# ---------------------------------------------------------------- shared lines
def test_a_shared_extension_is_a_shared_line_on_every_phone_that_has_it(out):
    vvx = phone_boot(out, "64167f000410", "VVX410")
    ip331 = phone_boot(out, "0004f2000331", "IP331")
    assert (vvx.params["reg.1.type"], vvx.params["reg.2.type"]) == ("private", "shared")
    assert ip331.params["reg.1.type"] == "shared"
    assert vvx.sources["reg.2.type"] == "64167f000410-phone.cfg"
    assert ip331.params["reg.1.address"] == vvx.params["reg.2.address"] == "1003"


def test_a_private_line_beats_the_sip3_default(out):
    r = phone_boot(out, "0004f2000330", "IP330")
    # Polycom's phone1.cfg comes later in CONFIG_FILES and says private too; ours is the one read
    assert (r.params["reg.1.type"], r.sources["reg.1.type"]) == ("private", "0004f2000330-phone.cfg")


# ---------------------------------------------------------------- busy lamp fields and line keys
def test_uc_phone_gets_its_resource_list_and_every_key_in_order(out):
    r = phone_boot(out, "64167f000410", "VVX410")
    blf = {k: v for k, v in r.params.items() if k.startswith("attendant.resourceList.")}
    assert blf == {
        "attendant.resourceList.1.address": "1002@pbx.example.com",
        "attendant.resourceList.1.label": "Charles Babbage",
        "attendant.resourceList.1.type": "normal",
        "attendant.resourceList.2.address": "1004@pbx.example.com",
        "attendant.resourceList.2.label": "Grace Hopper",
        "attendant.resourceList.2.type": "normal",
    }
    assert r.params["lineKey.reassignment.enabled"] == "1"
    keys = [(r.params[f"lineKey.{n}.category"], r.params[f"lineKey.{n}.index"]) for n in range(1, 7)]
    assert keys == [("Line", "1"), ("Line", "2"), ("BLF", "0"), ("SpeedDial", "1"), ("BLF", "0"),
                    ("SpeedDial", "2")]
    assert "lineKey.7.category" not in r.params


def test_sip3_phone_gets_its_resource_list_but_no_line_key_layout(out):
    r = phone_boot(out, "0004f2000330", "IP330")
    assert (r.params["attendant.resourceList.1.address"], r.sources["attendant.resourceList.1.address"]) == (
        "1002@pbx.example.com", "0004f2000330-phone.cfg")
    assert r.params["attendant.resourceList.1.label"] == "Charles Babbage"
    assert not any(k.startswith("lineKey.") for k in r.params)


def test_phones_without_keys_get_no_key_parameters(out):
    for mac, model in (("0004f2000331", "IP331"), ("0004f2004000", "IP4000")):
        r = phone_boot(out, mac, model)
        assert not any(k.startswith(("lineKey.", "attendant.")) and v for k, v in r.params.items()), mac


# ---------------------------------------------------------------- speed dials and the directory
def test_speed_dials_are_in_the_phones_own_directory(out):
    r = phone_boot(out, "64167f000410", "VVX410")
    assert r.directory_entries == 6  # the five listed extensions and one new number
    with_sd = sorted((e["sd"], e["ct"], e["lb"]) for e in r.directory if "sd" in e)
    # the number already listed keeps its one entry (a contact may appear once) and gets the index
    assert with_sd == [("1", "+15551234567", "Lobby"), ("2", "1002", "Charles Babbage")]
    assert next(e for e in r.directory if e["ct"] == "+15551234567") == {
        "fn": "Lobby", "ln": "", "ct": "+15551234567", "lb": "Lobby", "sd": "1"}


def test_other_phones_get_the_shared_directory_without_speed_dials(out):
    for mac, model in (("0004f2000331", "IP331"), ("0004f2000330", "IP330")):
        r = phone_boot(out, mac, model)
        assert r.directory_entries == 5
        assert not any("sd" in e for e in r.directory), mac
    assert sorted(p.name for p in (out / "contacts").iterdir()) == [
        "000000000000-directory.xml", "64167f000410-directory.xml"]


@pytest.mark.parametrize("mac, model, site_file", [
    ("64167f000410", "VVX410", "site.cfg"), ("0004f2000331", "IP331", "site.cfg"),
    ("0004f2000330", "IP330", "site.cfg"), ("0004f2004000", "IP4000", "site-sip3.cfg")])
def test_every_phone_gets_a_read_only_directory(out, mac, model, site_file):
    r = phone_boot(out, mac, model)
    # on SIP 3.2 and older, Polycom's sip.cfg (listed after the site file) has dir.local.readonly="" and loses
    assert (r.params["dir.local.readonly"], r.sources["dir.local.readonly"]) == ("1", site_file)


def test_a_site_setting_can_make_the_directory_editable_again(tmp_path):
    inv = write(tmp_path / "inventory", site__yaml=SITE + '  settings: {dir.local.readonly: "0"}\n')
    run(BuildOptions(inv, tmp_path / "out", TEMPLATES, make_firmware(tmp_path / "firmware")))
    assert phone_boot(tmp_path / "out", "0004f2000331", "IP331").params["dir.local.readonly"] == "0"


def test_a_changed_name_or_speed_dial_is_rebuilt(tmp_path):
    inv = write(tmp_path / "inventory")
    opts = BuildOptions(inv, tmp_path / "out", TEMPLATES, make_firmware(tmp_path / "firmware"))
    run(opts)
    # the busy lamp field's label comes from another extension's entry
    (inv / "extensions.yaml").write_text(EXTS.replace("first_name: Charles", "first_name: Chuck"))
    run(opts)
    r = phone_boot(opts.out, "64167f000410", "VVX410")
    assert r.params["attendant.resourceList.1.label"] == "Chuck Babbage"
    # without speed dials the phone's own directory goes, and the shared one answers for it
    (inv / "phones.yaml").write_text(PHONES.replace('      - speed_dial: {number: "+15551234567", label: Lobby}\n', "")
                                     .replace('      - speed_dial: {number: "1002"}\n', ""))
    run(opts)
    assert not (opts.out / "contacts/64167f000410-directory.xml").exists()
    r = phone_boot(opts.out, "64167f000410", "VVX410")
    assert r.directory_entries == 5 and not any("sd" in e for e in r.directory)
    assert [r.params[f"lineKey.{n}.category"] for n in range(1, 5)] == ["Line", "Line", "BLF", "BLF"]


def test_phone_directory_merges_and_appends(tmp_path):
    inv = load(write(tmp_path / "inventory"))
    shared = sorted(directory_entries(inv), key=lambda e: e.key)
    phone = Phone("0004f2000999", "VVX410", ("1001",), (), None,
                  (Key("speed_dial", "5551000", ""), Key("blf", "1002"), Key("speed_dial", "1005", "Alan")))
    entries = phone_directory(inv, shared, phone)
    assert [(e.contact, e.sd, e.label) for e in entries] == [
        ("1001", None, ""), ("1002", None, ""), ("1003", None, ""), ("1004", None, ""),
        ("1005", 2, "Alan"), ("5551000", 1, "5551000")]


@pytest.mark.parametrize("key, limit", [("IP321", 99), ("IP331", 99), ("IP335", 99), ("IP5000", 99),
                                        ("IP6000", 99), ("IP7000", 99), ("VVX500", 500), ("VVX410", 9999),
                                        ("IP650", 9999), ("VVX501", 9999)])
def test_directory_limits_are_polycoms(key, limit):
    # Polycom's UC 4.0.15/6.3.0 features.cfg: dir.local.contacts.maxNum and its per-model forms
    assert directory_limit(Catalog().models[key]) == limit


# ---------------------------------------------------------------- polygen check
CHECK_SITE = SITE + '  admin_password: "Adm1n-pw"\n  provisioning_auth: {user: phones-a, password: "Wq7-first-pass"}\n'


@pytest.fixture
def check(tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)

    def run_check(strict: bool = False, **files: str):
        # a site with an admin password and provisioning auth: `check` has nothing to say about it
        write(Path("inv"), **{"site__yaml": CHECK_SITE, **{k: textwrap.dedent(v) for k, v in files.items()}})
        r = CliRunner().invoke(cli, ["check", "-i", "inv", *(["--strict"] if strict else [])],
                               catch_exceptions=False)
        return r.exit_code, r.output.splitlines()

    return run_check


TWO_PHONES = """\
phones:
  - mac: 00:04:f2:00:03:30
    model: IP330
    lines: ["1001"]
  - mac: 64:16:7f:00:04:10
    model: VVX410
    lines: ["1002", "1001"]
"""


def test_check_refuses_an_extension_on_two_phones(check):
    assert check(phones__yaml=TWO_PHONES) == (1, [
        "inv/phones.yaml:7: phones[1].lines[1]: extension '1001' is also a line of phone 0004f2000330 "
        "(inv/phones.yaml:4); put it on one phone, or set shared: true on the extension "
        "(inv/extensions.yaml:2) to make it a shared line",
        "Error: 1 problem in inv"])


def test_check_names_each_later_phone_against_the_first(check):
    third = TWO_PHONES + '  - {mac: 00:04:f2:00:03:31, model: IP331, lines: ["1001"]}\n'
    code, out = check(phones__yaml=third)
    assert out[1] == ("inv/phones.yaml:8: phones[2].lines[0]: extension '1001' is also a line of phone "
                      "0004f2000330 (inv/phones.yaml:4); put it on one phone, or set shared: true on the "
                      "extension (inv/extensions.yaml:2) to make it a shared line")
    assert (code, len(out)) == (1, 3)


def test_check_accepts_a_shared_extension_on_two_phones(check):
    exts = EXTS.replace('first_name: Ada, last_name: Lovelace, secret: s1}',
                        'first_name: Ada, last_name: Lovelace, secret: s1, shared: yes}')
    assert check(phones__yaml=TWO_PHONES, extensions__yaml=exts) == (0, ["inv: 2 phones, 5 extensions: OK"])


def test_check_refuses_bad_keys(check):
    phones = """\
    phones:
      - mac: 00:04:f2:00:03:31
        model: IP331
        lines: ["1001"]
        keys:
          - blf: "1009"
          - blf: "1002"
          - blf: "1002"
          - speed_dial: {number: "555-1234"}
          - speed_dial: {label: Lobby}
          - {bfl: "1003"}
          - "1003"
      - mac: 64:16:7f:00:04:10
        model: VVX410
        lines: ["1002"]
        keys: {blf: "1001"}
    """
    assert check(phones__yaml=phones) == (1, [
        "inv/phones.yaml:5: phones[0].keys: 1 line and 7 keys, but the SoundPoint IP 331 has 2 line keys",
        "inv/phones.yaml:6: phones[0].keys[0].blf: no extension '1009' in the inventory (did you mean '1005'?)",
        "inv/phones.yaml:8: phones[0].keys[2]: a busy lamp field for '1002' is on this phone twice",
        "inv/phones.yaml:9: phones[0].keys[3].speed_dial.number: '555-1234' is not a number to dial: digits "
        "(also * and #), optionally after a '+'",
        "inv/phones.yaml:10: phones[0].keys[4].speed_dial.number: missing required field 'number'",
        "inv/phones.yaml:11: phones[0].keys[5].bfl: unknown key 'bfl' (did you mean 'blf'?); allowed: blf, "
        "speed_dial",
        "inv/phones.yaml:12: phones[0].keys[6]: expected either blf: \"EXT\" or speed_dial: {number: \"...\", "
        "label: \"...\"}",
        "inv/phones.yaml:16: phones[1].keys: expected a list of keys, e.g. [{blf: \"1002\"}]",
        "Error: 8 problems in inv"])


def test_check_counts_lines_and_keys_against_the_model(check):
    phones = """\
    phones:
      - mac: 00:04:f2:00:03:30
        model: IP330
        lines: ["1001", "1002"]
        keys:
          - speed_dial: {number: "5551000", label: Taxi}
    """
    assert check(phones__yaml=phones) == (1, [
        "inv/phones.yaml:5: phones[0].keys: 2 lines and 1 key, but the SoundPoint IP 330 has 2 line keys",
        "Error: 1 problem in inv"])


def test_check_warns_where_the_firmware_cannot_keep_the_keys(check):
    phones = """\
    phones:
      - mac: 00:04:f2:00:40:00
        model: IP301
        lines: []
        keys:
          - blf: "1002"
      - mac: 00:04:f2:00:06:01
        model: IP601
        lines: ["1001"]
        keys:
          - blf: "1003"
      - mac: 00:04:f2:00:03:30
        model: IP330
        lines: []
        keys:
          - speed_dial: {number: "5551000", label: Taxi}
          - blf: "1002"
    """
    assert check(phones__yaml=phones, strict=True) == (1, [
        "inv/phones.yaml:6: phones[0].keys[0].blf: warning: busy lamp fields need SIP 3.2 or later, but the "
        "SoundPoint IP 301 runs 3.1.8; this key is not written",
        "inv/phones.yaml:11: phones[1].keys[0].blf: warning: busy lamp fields need SIP 3.2 or later, but the "
        "SoundPoint IP 601 runs 3.1.8; this key is not written",
        "inv/phones.yaml:15: phones[2].keys: warning: the SoundPoint IP 330 (3.3.5) places busy lamp fields and "
        "speed dials itself (lineKey.* needs UC Software 4), so a speed dial before a busy lamp field may not "
        "keep its place",
        "inv/site.yaml:6: site.admin_password: warning: SIP 3.2 and older firmware takes no admin password from "
        "its configuration: 0004f2000601 (SoundPoint IP 601, 3.1.8), 0004f2004000 (SoundPoint IP 301, 3.1.8) keep "
        "the one set on the phone (456 from the factory); change it in the phone's menu or web interface",
        "Error: 4 problems in inv"])


def _many(n: int, first: int = 2000) -> str:
    return EXTS + "".join(f'  - {{ext: "{e}", first_name: N{e}, secret: s}}\n' for e in range(first, first + n))


def test_check_warns_when_the_directory_is_larger_than_a_model_keeps(check):
    phones = """\
    phones:
      - {mac: 64:16:7f:00:04:10, model: VVX410, lines: ["1001"]}
      - {mac: 00:04:f2:00:03:31, model: IP331, lines: ["1002"]}
      - {mac: 00:04:f2:00:60:00, model: IP6000, lines: ["1003"]}
      - {mac: 00:04:f2:00:03:35, model: IP331, lines: ["1004"]}
    """
    code, out = check(phones__yaml=phones, extensions__yaml=_many(95))
    assert (code, out) == (0, [
        "inv/phones.yaml:3: phones[1].model: warning: the company directory lists 100 contacts, more than these "
        "models keep: SoundPoint IP 331 (99), SoundStation IP 6000 (99); set directory: false on some extensions",
        "inv: 4 phones, 100 extensions: OK (1 warning)"])
    # 99 fit
    assert check(phones__yaml=phones, extensions__yaml=_many(94)) == (0, ["inv: 4 phones, 99 extensions: OK"])


def test_check_warns_when_speed_dials_overfill_a_phones_own_directory(check):
    phones = """\
    phones:
      - mac: 00:04:f2:00:03:31
        model: IP331
        lines: []
        keys:
          - speed_dial: {number: "1001"}
          - speed_dial: {number: "5551000"}
    """
    # 98 listed: the listed 1001 adds nothing, the new number makes 99: fits
    assert check(phones__yaml=phones, extensions__yaml=_many(93)) == (0, ["inv: 1 phones, 98 extensions: OK"])
    assert check(phones__yaml=phones, extensions__yaml=_many(94)) == (0, [
        "inv/phones.yaml:5: phones[0].keys: warning: with its speed dials this phone's directory lists 100 "
        "contacts, but a SoundPoint IP 331 keeps at most 99; remove speed dials or set directory: false on "
        "some extensions",
        "inv: 1 phones, 99 extensions: OK (1 warning)"])
