"""Follow each example phone's boot through the built files, as the phone does (docs/polycom.md §1-§5):
master by User-Agent, per-model element, firmware, CONFIG_FILES in order (first value wins),
override files, directory, boot-log upload; then check the effective registration."""

from __future__ import annotations

import pytest

from polygen.build import BuildOptions, run
from polygen.dialcheck import DIGITMAP, HANDLING, TIMEOUT
from polygen.dialplan import dial
from polygen.inventory import load
from polygen.simulate import TreeTransport, boot, format_report

from .conftest import TEMPLATES

UA = {
    "IP330": "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247 Type/Application",
    "IP331": "FileTransport PolycomSoundPointIP-SPIP_331-UA/4.0.15.1009 Type/Application",
    "IP4000": "FileTransport PolycomSoundStationIP-SSIP_4000-UA/3.1.8.0070",
    "VVX410": "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application",
}


@pytest.fixture
def inventory(inventory_dir):
    return load(inventory_dir)


@pytest.mark.parametrize("mac", ["0004f2000330", "0004f2000331", "0004f2004000", "64167f000410"])
def test_boot_chain_of_each_example_phone(built, inventory, mac):
    phone = next(p for p in inventory.phones if p.mac == mac)
    t = TreeTransport(built)
    r = boot(t, mac, UA[phone.model])
    assert r.ok, format_report(r)
    model = inventory.catalog.models[phone.model]
    # the per-model element decided the firmware and the files
    assert r.master["APP_FILE_PATH"] == f"firmware/{model.firmware}/sip.ld"
    paths = [q.path for q in r.requests]
    assert paths[:3] == [f"/{mac}.cfg", "/000000000000.cfg", f"/firmware/{model.firmware}/sip.ld"]
    assert r.requests[0].status == 404  # no per-phone master: the UA-dispatched default answers
    cfg = r.master["CONFIG_FILES"].split(", ")
    assert cfg[0] == "[PHONE_MAC_ADDRESS]-phone.cfg"  # the phone's own file first
    if model.dialect == "sip3":
        # Polycom's sip.cfg/phone1.cfg come last and their empty defaults lose
        assert cfg[-2:] == [f"firmware/{model.firmware}/phone1.cfg", f"firmware/{model.firmware}/sip.cfg"]
        assert r.sources["prov.polling.time"] == "site-sip3.cfg"
    else:
        assert r.sources["prov.polling.time"] == "site.cfg"
    assert r.params["prov.polling.time"] == "01:00"
    # effective registrations, in key order
    assert [ln.address for ln in r.lines] == list(phone.lines)
    for ln in r.lines:
        ext = inventory.extensions[ln.address]
        assert (ln.user_id, ln.password, ln.display_name, ln.label, ln.server) == (
            ext.ext, ext.secret, ext.display_name, ext.label, "pbx.example.com")
    assert r.params["tcpIpApp.sntp.gmtOffset"] == "-18000"
    _dials_every_number(r, inventory, model.dialect)
    _messages_key_calls_voicemail(r, inventory, phone, mac)
    _admin_password_only_in_the_phones_file(r, inventory, model.dialect, mac)
    assert r.directory_entries == 5
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
    if dialect != "uc":  # SIP 3.x takes no admin password from a file (`check` names these phones)
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
