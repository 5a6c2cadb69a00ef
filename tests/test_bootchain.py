"""Follow each phone's boot through the built files, as the phone does (docs/polycom.md §1-§6):
master by User-Agent, per-model element, firmware (split image first), CONFIG_FILES in order
(first value wins), override files, directory, boot-log upload; then check the effective
configuration: what each parameter is, and which file it came from."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from polygen.build import BuildOptions, run
from polygen.catalog import Catalog
from polygen.dialcheck import DIGITMAP, HANDLING, TIMEOUT
from polygen.dialplan import dial
from polygen.errors import InventoryError
from polygen.inventory import load
from polygen.simulate import TreeTransport, boot, format_report

from .conftest import TEMPLATES, make_firmware

UA = {
    "IP330": "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247 Type/Application",
    "IP331": "FileTransport PolycomSoundPointIP-SPIP_331-UA/4.0.15.1009 Type/Application",
    "IP5000": "FileTransport PolycomSoundStationIP-SSIP_5000-UA/4.0.3.7562 Type/Application",
    "VVX410": "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application",
}
UA_IP4000 = "FileTransport PolycomSoundStationIP-SSIP_4000-UA/3.1.8.0070"


@pytest.fixture
def inventory(inventory_dir):
    return load(inventory_dir)


def add_phones(inventory_dir, text: str) -> None:
    """Phones beside the example's, in a file of their own, with extension 3000 for their line
    (an extension of the example is already another phone's line)."""
    (inventory_dir / "more.yaml").write_text(
        'extensions:\n  - {ext: "3000", first_name: Extra, secret: s3cret-3000}\nphones:\n' + text)


def build(inventory_dir, firmware, tmp_path):
    out = tmp_path / "out"
    run(BuildOptions(inventory_dir, out, TEMPLATES, firmware))
    return out


def requested(r) -> list[tuple[str, int]]:
    return [(q.path, q.status) for q in r.requests]


@pytest.mark.parametrize("mac", ["0004f2000330", "0004f2000331", "0004f2005000", "64167f000410"])
def test_boot_chain_of_each_example_phone(built, inventory, mac):
    phone = next(p for p in inventory.phones if p.mac == mac)
    t = TreeTransport(built)
    r = boot(t, mac, UA[phone.model])
    assert r.ok, format_report(r)
    model = inventory.catalog.models[phone.model]
    # the per-model element decided the firmware and the files
    fw = f"firmware/{model.firmware}"
    assert r.master["APP_FILE_PATH"] == f"{fw}/sip.ld"
    # the phone asks for its split image first; the example's releases are combined ones
    assert requested(r)[:4] == [(f"/{mac}.cfg", 404), ("/000000000000.cfg", 200),
                                (f"/{fw}/{model.part_number}.sip.ld", 404), (f"/{fw}/sip.ld", 200)]
    assert r.firmware == f"{fw}/sip.ld"
    # every example phone runs UC Software 3.3 or later: the phone's file, then the site file
    assert r.master["CONFIG_FILES"].split(", ") == ["[PHONE_MAC_ADDRESS]-phone.cfg", "site.cfg"]
    assert not any(q.path.endswith(("sip.cfg", "phone1.cfg")) for q in r.requests)
    # no polling in the inventory: the phones spread over 01:00-05:00
    assert {k: r.params[k] for k in ("prov.polling.mode", "prov.polling.time", "prov.polling.timeRandomEnd")} \
        == {"prov.polling.mode": "random", "prov.polling.time": "01:00", "prov.polling.timeRandomEnd": "05:00"}
    assert r.sources["prov.polling.mode"] == r.sources["prov.polling.timeRandomEnd"] == "site.cfg"
    # effective registrations, in key order
    assert [ln.address for ln in r.lines] == list(phone.lines)
    assert r.sources["reg.1.address"] == f"{mac}-phone.cfg"
    for ln in r.lines:
        ext = inventory.extensions[ln.address]
        assert (ln.user_id, ln.password, ln.display_name, ln.label, ln.server) == (
            ext.ext, ext.secret, ext.display_name, ext.label, "pbx.example.com")
    assert r.params["tcpIpApp.sntp.gmtOffset"] == "-18000"
    _dials_every_number(r, inventory, model.dialect)
    _messages_key_calls_voicemail(r, inventory, phone, mac)
    _admin_password_only_in_the_phones_file(r, inventory, model.dialect, mac)
    assert r.directory_entries == 5
    paths = [q.path for q in r.requests]
    assert f"/contacts/{mac}-directory.xml" in paths and "/contacts/000000000000-directory.xml" in paths
    assert list(t.uploads) == [f"logs/{mac}-boot.log"]


def _dials_every_number(r, inventory, dialect):
    """The map the phone ends up with sends every extension, 911 and *97 by itself, as dialled
    (with no dialplan.* written, Polycom's default map sends 1002 as "10")."""
    site_file = "site.cfg" if dialect == "uc" else "site-sip3.cfg"
    for name in (DIGITMAP, TIMEOUT, HANDLING):
        assert r.sources[name] == site_file
    assert r.params[DIGITMAP] == "911|*97|1xxx|9xx.T" and r.params[HANDLING] == "2"
    for number in [*inventory.extensions, "911", "*97"]:
        d = dial(r.params[DIGITMAP], number, int(r.params[HANDLING]), timeouts=r.params[TIMEOUT])
        assert (d.sent, d.when) == (number, "immediately"), d.describe()
    outside = dial(r.params[DIGITMAP], "912125550123", 2, timeouts=r.params[TIMEOUT])
    assert (outside.sent, outside.when, outside.timeout) == ("912125550123", "after-timeout", 3)


def _messages_key_calls_voicemail(r, inventory, phone, mac):
    """Each line subscribes to its mailbox (the extension's, unless mailbox: says otherwise) and
    its Messages key calls *97, not the line itself."""
    for i, ext in enumerate(phone.lines, 1):
        mailbox = inventory.extensions[ext].mailbox
        assert r.params[f"msg.mwi.{i}.subscribe"] == f"{mailbox}@pbx.example.com"
        assert (r.params[f"msg.mwi.{i}.callBackMode"], r.params[f"msg.mwi.{i}.callBack"]) == ("contact", "*97")
        assert r.sources[f"msg.mwi.{i}.callBack"] == f"{mac}-phone.cfg"
    assert f"msg.mwi.{len(phone.lines) + 1}.subscribe" not in r.params


def _admin_password_only_in_the_phones_file(r, inventory, dialect, mac):
    if dialect != "uc":  # SIP 3.2 and older take no admin password from a file (`check` names these phones)
        assert not any(k.startswith("device.auth") for k in r.params)
        return
    assert r.params["device.auth.localAdminPassword"] == inventory.site.admin_password == "Example-admin-1"
    assert r.params["device.set"] == r.params["device.auth.localAdminPassword.set"] == "1"
    assert r.sources["device.auth.localAdminPassword"] == f"{mac}-phone.cfg"


def test_admin_password_is_never_in_a_file_everyone_may_read(built):
    for f in built.rglob("*"):
        if f.is_file() and b"Example-admin-1" in f.read_bytes():
            assert f.name.endswith("-phone.cfg") and f.stat().st_mode & 0o777 == 0o640, f
    assert b"Example-admin-1" in (built / "64167f000410-phone.cfg").read_bytes()


def test_a_phones_own_digit_map_wins(inventory_dir, firmware_dir, tmp_path):
    phones = inventory_dir / "phones.yaml"
    phones.write_text(phones.read_text().replace(
        '      up.backlight.idleIntensity: "1"\n',
        '      up.backlight.idleIntensity: "1"\n      dialplan.digitmap: "911|*97|10xx|9xx.T"\n'))
    out = tmp_path / "own"
    run(BuildOptions(inventory_dir, out, TEMPLATES, firmware_dir))
    r = boot(TreeTransport(out), "64167f000410", UA["VVX410"])
    assert (r.params[DIGITMAP], r.sources[DIGITMAP]) == ("911|*97|10xx|9xx.T", "64167f000410-phone.cfg")
    assert r.sources[HANDLING] == "site.cfg"  # the rest still comes from the site
    other = boot(TreeTransport(out), "0004f2000331", UA["IP331"])
    assert (other.params[DIGITMAP], other.sources[DIGITMAP]) == ("911|*97|1xxx|9xx.T", "site.cfg")


def test_unknown_user_agent_gets_the_default_bootstrap_with_model_elements(built):
    r = boot(TreeTransport(built), "64167f000410", "curl/8.0")
    # no model token: the base attributes apply and firmware is the generic sip.ld (absent)
    assert r.master["APP_FILE_PATH"] == "sip.ld"
    assert any("firmware sip.ld answered 404" in f for f in r.failures)
    assert [ln.address for ln in r.lines] == ["1005", "1003", "1004"]


def test_report_masks_passwords(built):
    r = boot(TreeTransport(built), "0004f2000330", UA["IP330"])
    text = format_report(r)
    assert "s3cret-1001" not in text and "1001/********" in text


@pytest.mark.parametrize(("policy", "after"), [("keep", "3"), ("discard", "1")])
def test_a_change_on_the_phone_at_its_next_boot(inventory_dir, firmware_dir, tmp_path, policy, after):
    """The phone PUTs its override file into OVERRIDES_DIRECTORY and fetches it at its next boot
    (the tree answers like the sidecar): with keep it beats the phone's own CONFIG_FILES value,
    with discard the inventory's value comes back."""
    from polygen.simulate import local_change

    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text() + f"  overrides: {policy}\n")
    out = tmp_path / policy
    run(BuildOptions(inventory_dir, out, TEMPLATES, firmware_dir))
    t = TreeTransport(out)
    r = boot(t, "64167f000410", UA["VVX410"])
    assert r.master["OVERRIDES_DIRECTORY"] == "overrides"
    assert r.params["up.backlight.idleIntensity"] == "1"  # the phone's own setting in the inventory
    assert local_change(t, r, {"up.backlight.idleIntensity": "3"}).status == 201
    assert list(t.uploads)[-1] == "overrides/64167f000410-phone.cfg"
    again = boot(t, "64167f000410", UA["VVX410"])
    assert again.ok, format_report(again)
    source = "overrides/64167f000410-phone.cfg" if policy == "keep" else "64167f000410-phone.cfg"
    assert (again.params["up.backlight.idleIntensity"], again.sources["up.backlight.idleIntensity"]) == (after, source)
    # a phone the build does not know has no override files, and may not upload one
    stranger = boot(t, "0004f2999999", UA["VVX410"])
    assert local_change(t, stranger, {"up.backlight.idleIntensity": "3"}).status == 404


# ------------------------------------------------------------------ dialect per release
def test_uc_3_3_phone_gets_polycomconfig_and_no_legacy_files(inventory_dir, tmp_path):
    """UC Software 3.3.5 ships no sip.cfg (Polycom's 4.0.15 master: CONFIG_FILES_SPIP330=""): even
    with such files lying in its release directory, the IP 330 is not sent to them."""
    fw = make_firmware(tmp_path / "fw")
    for name in ("sip.cfg", "phone1.cfg"):
        (fw / "3.3.5" / name).write_text("<sip/>\n")
    out = build(inventory_dir, fw, tmp_path)
    r = boot(TreeTransport(out), "0004f2000330", UA["IP330"])
    assert r.ok, format_report(r)
    assert r.master["CONFIG_FILES"] == "[PHONE_MAC_ADDRESS]-phone.cfg, site.cfg"
    assert [p for p, _ in requested(r) if p.endswith(".cfg") and "0004f2000330" not in p] == [
        "/000000000000.cfg", "/site.cfg"]
    assert r.sources["reg.1.auth.password"] == "0004f2000330-phone.cfg"
    assert r.sources["voIpProt.server.1.address"] == "site.cfg"
    assert ET.fromstring((out / "0004f2000330-phone.cfg").read_bytes()).tag == "polycomConfig"
    assert not (out / "firmware/3.3.5/sip.cfg").exists()


def test_legacy_release_reads_its_sip_cfg_last(inventory_dir, tmp_path):
    add_phones(inventory_dir, '  - {mac: 0004f2004000, model: IP4000, lines: ["3000"]}\n')
    out = build(inventory_dir, make_firmware(tmp_path / "fw"), tmp_path)
    r = boot(TreeTransport(out), "0004f2004000", UA_IP4000)
    assert r.ok, format_report(r)
    assert r.master["CONFIG_FILES"].split(", ") == [
        "[PHONE_MAC_ADDRESS]-phone.cfg", "site-sip3.cfg", "firmware/3.1.8/phone1.cfg", "firmware/3.1.8/sip.cfg"]
    assert ET.fromstring((out / "0004f2004000-phone.cfg").read_bytes()).tag == "phone1"
    # ours first; Polycom's defaults only fill what we leave unset
    assert (r.params["reg.1.address"], r.sources["reg.1.address"]) == ("3000", "0004f2004000-phone.cfg")
    assert (r.params["voIpProt.server.1.address"], r.sources["voIpProt.server.1.address"]) == (
        "pbx.example.com", "site-sip3.cfg")
    assert r.sources["voIpProt.SIP.outboundProxy.address"] == "firmware/3.1.8/sip.cfg"


def test_legacy_release_without_sip_cfg_is_an_error(inventory_dir, tmp_path):
    add_phones(inventory_dir, '  - {mac: 0004f2004000, model: IP4000, lines: ["3000"]}\n')
    fw = make_firmware(tmp_path / "fw")
    (fw / "3.1.8" / "phone1.cfg").unlink()
    with pytest.raises(InventoryError) as exc:
        build(inventory_dir, fw, tmp_path)
    errors = [str(p) for p in exc.value.problems if p.severity == "error"]
    assert errors == [
        f"firmware/3.1.8/phone1.cfg not found: SoundStation IP 4000 phones run SIP 3.1.8, which has no built-in "
        f"defaults (Polycom's sip.cfg and phone1.cfg hold them); unpack the 3.1.8 release into {fw}/3.1.8/"]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ firmware: split and combined
def test_split_release_gives_each_model_its_part_file(inventory_dir, tmp_path):
    """A split 5.9.7 release: the VVX 410 fetches 3111-46162-001.sip.ld and stops there."""
    fw = make_firmware(tmp_path / "fw", releases=("3.3.5", "4.0.15"), split={"5.9.7": ["3111-46162-001"]})
    out = build(inventory_dir, fw, tmp_path)
    r = boot(TreeTransport(out), "64167f000410", UA["VVX410"])
    assert r.ok, format_report(r)
    assert requested(r)[2:4] == [("/firmware/5.9.7/3111-46162-001.sip.ld", 200), ("/64167f000410-phone.cfg", 200)]
    assert r.firmware == "firmware/5.9.7/3111-46162-001.sip.ld"


def test_split_release_without_the_models_part_file_is_an_error(inventory_dir, tmp_path):
    # only the VVX 500's image: the VVX 410 would find nothing
    fw = make_firmware(tmp_path / "fw", releases=("3.3.5", "4.0.15"), split={"5.9.7": ["3111-44500-001"]})
    with pytest.raises(InventoryError) as exc:
        build(inventory_dir, fw, tmp_path)
    assert [str(p) for p in exc.value.problems if p.severity == "error"] == [
        f"firmware/5.9.7/ is a split release without 3111-46162-001.sip.ld, the image of the VVX 410, and has "
        f"no combined sip.ld: unpack that file (or the combined release) into {fw}/5.9.7/"]


def test_a_release_not_unpacked_is_a_warning_and_the_phone_keeps_its_firmware(inventory_dir, tmp_path):
    fw = make_firmware(tmp_path / "fw", releases=("3.3.5", "4.0.15"))
    out = tmp_path / "out"
    result = run(BuildOptions(inventory_dir, out, TEMPLATES, fw))
    assert [w for w in result.warnings if "5.9.7" in w] == [
        f"firmware/5.9.7/sip.ld not found: VVX 410 phones keep the firmware they run; unpack Polycom's 5.9.7 "
        f"release into {fw}/5.9.7/"]
    r = boot(TreeTransport(out), "64167f000410", UA["VVX410"], firmware_required=False)
    assert requested(r)[2:4] == [("/firmware/5.9.7/3111-46162-001.sip.ld", 404), ("/firmware/5.9.7/sip.ld", 404)]
    assert r.firmware is None and r.ok


# ------------------------------------------------------------------ the new catalog entries
NEW_MODELS = ["CCX350", "CCX400", "CCX500", "CCX505", "CCX600", "CCX700", "TRIOC60"]


@pytest.mark.parametrize("key", NEW_MODELS)
def test_new_models_boot_through_their_own_element(inventory_dir, tmp_path, key):
    model = Catalog().models[key]
    add_phones(inventory_dir, f'  - {{mac: 482567000001, model: {key}, lines: ["3000"]}}\n')
    out = build(inventory_dir, make_firmware(tmp_path / "fw", releases=("3.3.5", "4.0.15", "5.9.7", model.firmware)),
                tmp_path)
    r = boot(TreeTransport(out), "482567000001", model.user_agent)
    assert r.ok, format_report(r)
    assert r.master["APP_FILE_PATH"] == f"firmware/{model.firmware}/sip.ld"
    assert (out / f"bootstrap/{model.token}.cfg").is_file()
    assert r.master["CONFIG_FILES"] == "[PHONE_MAC_ADDRESS]-phone.cfg, site.cfg"
    assert [(ln.address, ln.user_id) for ln in r.lines] == [("3000", "3000")]


def test_a_ccx_user_agent_seen_in_the_wild_gets_the_ccx_bootstrap(inventory_dir, tmp_path):
    add_phones(inventory_dir, '  - {mac: 482567b5313f, model: CCX600, lines: ["3000"]}\n')
    out = build(inventory_dir, make_firmware(tmp_path / "fw", releases=("3.3.5", "4.0.15", "5.9.7", "8.0.2")),
                tmp_path)
    ua = "FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application"
    r = boot(TreeTransport(out), "482567b5313f", ua)
    assert r.ok, format_report(r)
    assert r.master["APP_FILE_PATH"] == "firmware/8.0.2/sip.ld"
    assert r.sources["reg.1.address"] == "482567b5313f-phone.cfg"


# ------------------------------------------------------------------ polling
def test_explicit_polling_is_kept_as_written(inventory_dir, tmp_path):
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace("  ntp_server: pool.ntp.org\n",
                                             '  ntp_server: pool.ntp.org\n  polling: {mode: abs, time: "02:30"}\n'))
    add_phones(inventory_dir, '  - {mac: 0004f2004000, model: IP4000, lines: ["3000"]}\n')
    out = build(inventory_dir, make_firmware(tmp_path / "fw"), tmp_path)
    for mac, ua, site_file in (("64167f000410", UA["VVX410"], "site.cfg"),
                               ("0004f2004000", UA_IP4000, "site-sip3.cfg")):
        r = boot(TreeTransport(out), mac, ua)
        assert (r.params["prov.polling.mode"], r.params["prov.polling.time"]) == ("abs", "02:30")
        assert r.sources["prov.polling.time"] == site_file
        assert "prov.polling.timeRandomEnd" not in r.params


def test_legacy_phones_spread_over_the_window_without_time_random_end(inventory_dir, tmp_path):
    """SIP 3.2 and older have no timeRandomEnd: each legacy phone polls daily (abs) at a minute of
    the default window taken from its MAC, set in its own file."""
    macs = [f"0004f20040{i:02x}" for i in range(40)]
    exts = "".join(f'  - {{ext: "2{i:03d}", first_name: P{i}, secret: s3cret-{i}}}\n' for i in range(40))
    (inventory_dir / "more-ext.yaml").write_text("extensions:\n" + exts)
    add_phones(inventory_dir, "".join(f'  - {{mac: {m}, model: IP4000, lines: ["2{i:03d}"]}}\n'
                                      for i, m in enumerate(macs)))
    out = build(inventory_dir, make_firmware(tmp_path / "fw"), tmp_path)
    times = []
    for mac in macs:
        r = boot(TreeTransport(out), mac, UA_IP4000)
        assert r.ok, format_report(r)
        assert r.params["prov.polling.mode"] == "abs" and r.sources["prov.polling.mode"] == "site-sip3.cfg"
        assert r.sources["prov.polling.time"] == f"{mac}-phone.cfg"
        assert "prov.polling.timeRandomEnd" not in r.params
        assert "01:00" <= r.params["prov.polling.time"] < "05:00"
        times.append(r.params["prov.polling.time"])
    assert len(set(times)) > 30  # spread, not all at one minute
    # a rebuild does not move them
    again = build(inventory_dir, make_firmware(tmp_path / "fw"), tmp_path / "again")
    assert (again / f"{macs[0]}-phone.cfg").read_bytes() == (out / f"{macs[0]}-phone.cfg").read_bytes()
