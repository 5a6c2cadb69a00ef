"""Follow each example phone's boot through the built files, as the phone does (docs/polycom.md §1-§5):
master by User-Agent, per-model element, firmware, CONFIG_FILES in order (first value wins),
override files, directory, boot-log upload; then check the effective registration."""

from __future__ import annotations

import pytest

from polygen.inventory import load
from polygen.simulate import TreeTransport, boot, format_report

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
    assert r.directory_entries == 5
    assert f"/contacts/{mac}-directory.xml" in paths and "/contacts/000000000000-directory.xml" in paths
    assert list(t.uploads) == [f"logs/{mac}-boot.log"]


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
