"""polygen import tree: round trips through polygen's own builds, and trees shaped like other
systems' output (written here), compared phone by phone on what each phone ends up with."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from polygen.build import BuildOptions, run
from polygen.catalog import Catalog, dialect_of
from polygen.errors import InventoryError
from polygen.importing.compare import Difference, differences
from polygen.importing.infer import import_tree
from polygen.inventory import Contact, Dialing, Key, load
from polygen.simulate import TreeTransport, boot

from .conftest import EXAMPLE, TEMPLATES

EXAMPLE_MODELS = {"0004f2000330": "IP330", "0004f2000331": "IP331", "0004f2005000": "IP5000",
                  "64167f000410": "VVX410"}


def ua(model_name: str, catalog=None) -> str:
    m = (catalog or Catalog()).find(model_name)
    return f"FileTransport {m.family}-{m.ua_token}-UA/{m.firmware}.0000 Type/Application"


def fake_firmware(dest: Path, releases) -> Path:
    """Releases as the build links them; the SIP 3.2-or-older ones with a sip.cfg/phone1.cfg of
    our own (Polycom's are not ours to copy), whose values the phones read after polygen's files."""
    for rel in releases:
        d = dest / rel
        d.mkdir(parents=True)
        (d / "sip.ld").write_bytes(b"firmware " + rel.encode())
        if dialect_of(rel) == "sip3":
            (d / "sip.cfg").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n<sip><log log.render.file.size="16" '
                'log.render.file.upload.period="172800"/><up up.headsetMode="0" up.oneTouchVoiceMail="0"/>'
                '<voIpProt voIpProt.server.1.address="" voIpProt.SIP.outboundProxy.address=""/></sip>\n')
            (d / "phone1.cfg").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n<phone1><reg reg.1.displayName="" reg.1.address="" '
                'reg.1.label="" reg.1.type="private" reg.1.lineKeys="1" reg.2.lineKeys="1"/></phone1>\n')
    return dest


def build(inventory: Path, out: Path, firmware: Path) -> Path:
    run(BuildOptions(inventory, out, TEMPLATES, firmware))
    return out


def effective(out: Path, mac: str, user_agent: str):
    r = boot(TreeTransport(out), mac, user_agent, firmware_required=False)
    # other systems' trees may lack a firmware image or a per-phone directory; nothing else
    assert [f for f in r.failures if not f.endswith(f"{mac}-directory.xml answered 404")] == []
    return r


def assert_same_phones(out1: Path, out2: Path, models: dict[str, str], catalog=None) -> None:
    """Every phone's effective parameters identical, value for value (passwords too), and the
    same directory."""
    for mac, model in models.items():
        before = effective(out1, mac, ua(model, catalog))
        after = effective(out2, mac, ua(model, catalog))
        assert before.params == after.params, mac
        assert len(before.params) > 20
        assert [ln.password for ln in before.lines] == [ln.password for ln in after.lines]
        assert before.directory == after.directory, mac  # a phone's own, with its speed dials
    d = "contacts/000000000000-directory.xml"
    assert (out1 / d).read_bytes() == (out2 / d).read_bytes()


# ------------------------------------------------------------------ polygen's own builds
def test_round_trip_of_the_shipped_example(tmp_path):
    fw = fake_firmware(tmp_path / "firmware", ("3.1.8", "3.3.5", "4.0.15", "5.9.7"))
    out1 = build(EXAMPLE, tmp_path / "out1", fw)
    inferred, written = import_tree(out1, tmp_path / "imported", models=EXAMPLE_MODELS,
                                    site_name="Example Corp", provisioning_url="http://prov.example.com/",
                                    firmware=fw, env={})
    assert [p for p in inferred.problems if p.severity == "error"] == []
    out2 = build(tmp_path / "imported", tmp_path / "out2", fw)
    assert_same_phones(out1, out2, EXAMPLE_MODELS)
    # and the inventory is the one we started from: nothing polygen computes came back as a setting
    original, imported = load(EXAMPLE, env={}), load(tmp_path / "imported", env={})
    assert imported.extensions == original.extensions
    assert imported.phones == original.phones
    assert imported.site == original.site
    # the passwords are in the secrets file only
    for f in ("site.yaml", "extensions.yaml", "phones.yaml"):
        assert "s3cret" not in (tmp_path / "imported" / f).read_text()
    assert (tmp_path / "imported" / "secrets.yaml").stat().st_mode & 0o777 == 0o600


RICHER = {
    "site.yaml": """\
        site:
          name: Richer Corp
          provisioning_url: https://prov.example.org/
          sip_server: "sip.example.org:5070"
          timezone: Europe/Berlin
          ntp_server: ntp.example.org
          polling: {mode: random, time: "02:00", time_random_end: "04:30", period: 172800}
          voicemail: "*98"
          dialing: {emergency: ["112"], outside_prefix: "0", feature_codes: ["*72x.T"]}
          admin_password: "Adm1n Richer!"
          settings:
            up.headsetMode: "1"
            dialplan.impossibleMatchHandling: "1"
            log.render.file.upload.period: "3600"
          provisioning_auth:
            user: phones-1
            password: "pr0v-pass"
        models:
          IP331: {firmware: "4.0.11"}
        """,
    "extensions.yaml": """\
        extensions:
          - {ext: "201", first_name: Zoë, last_name: "Ångström", secret: "pw-201", label: "Zoë"}
          - {ext: "202", first_name: Bob, secret: "pw 202 & <x>\\"", display_name: "Robert (Sales)"}
          - {ext: "203", first_name: Shared, last_name: Line, secret: "pw-203", shared: true}
          - {ext: "204", first_name: "", last_name: Lobby, secret: "pw-204", mailbox: "2040"}
          - {ext: "sales.1", first_name: Sales, last_name: Queue, secret: "pw-s1", directory: false}
          - {ext: "4930-123", first_name: Berlin, last_name: Office, secret: "pw-b"}
        """,
    "contacts.yaml": """\
        contacts:
          - {number: "+15551234567", first_name: Alan, last_name: Turing}
          - {number: "sip:helpdesk@example.org", label: "IT Helpdesk"}
          - {number: "0800123", last_name: "Taxi & Co"}
        """,
    "phones.yaml": """\
        phones:
          - {mac: "00:04:f2:aa:00:01", model: IP330, lines: ["201", "203"]}
          - mac: "00:04:f2:aa:00:02"
            model: IP331
            lines: ["202"]
            timezone: America/Chicago
            keys: [{blf: "201"}]
          - mac: "00:04:f2:aa:00:03"
            model: IP301
            lines: ["204"]
            settings: {reg.1.label: "Lobby phone", prov.polling.time: "05:00"}
          - mac: "64:16:7f:aa:00:04"
            model: VVX410
            lines: ["sales.1", "203", "4930-123"]
            keys:
              - speed_dial: {number: "+15551234567"}
              - blf: "202"
              - speed_dial: {number: "5550100", label: Taxi}
            settings: {up.backlight.idleIntensity: "2", tcpIpApp.sntp.gmtOffset.overrideDHCP: "0"}
          - {mac: "64:16:7f:aa:00:05", model: VVX410, lines: [], timezone: Asia/Kolkata}
        """,
}
RICHER_MODELS = {"0004f2aa0001": "IP330", "0004f2aa0002": "IP331", "0004f2aa0003": "IP301",
                 "64167faa0004": "VVX410", "64167faa0005": "VVX410"}


def write_inventory(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def test_round_trip_of_a_richer_inventory(tmp_path):
    """Both dialects, a model's release overridden, contacts, a shared line, per-phone zones, random
    polling, provisioning auth, a SIP port, voicemail, a generated dial plan, the phones' admin
    password, busy lamp fields and speed dials, site settings replacing computed values, phone
    settings replacing computed ones, an extension without a directory entry, a phone without lines."""
    inv = write_inventory(tmp_path / "inv", RICHER)
    fw = fake_firmware(tmp_path / "firmware", ("3.1.8", "3.3.5", "4.0.11", "5.9.7"))
    out1 = build(inv, tmp_path / "out1", fw)
    inferred, _ = import_tree(out1, tmp_path / "imported", default_model="VVX410",
                              models={k: v for k, v in RICHER_MODELS.items() if v != "VVX410"},
                              site_name="Richer Corp", firmware=fw, env={},
                              provisioning_url="https://prov.example.org/")
    assert [str(p) for p in inferred.problems] == []
    out2 = build(tmp_path / "imported", tmp_path / "out2", fw)
    original, imported = load(inv, env={}), load(tmp_path / "imported", env={})
    assert_same_phones(out1, out2, RICHER_MODELS, original.catalog)
    # auth, port, polling, NTP, zone, voicemail, dialling, admin password and settings all first-class
    assert imported.site == original.site
    assert [p.keys for p in imported.phones] == [p.keys for p in original.phones]
    assert imported.catalog.models["IP331"].firmware == "4.0.11"
    assert set(imported.contacts) == set(original.contacts)  # in the directory's order
    assert {p.mac: p.timezone for p in imported.phones} == {p.mac: p.timezone for p in original.phones}
    assert imported.extensions["204"].mailbox == "2040"  # the directory entry matched by its name
    assert not imported.extensions["sales.1"].directory
    assert imported.extensions["202"].display_name == "Robert (Sales)"
    # the phone that first carries 204 overrides its label: the extension takes the phone's value
    assert imported.extensions["204"].label == "Lobby phone"
    assert dict(imported.phones[2].settings) == {"prov.polling.time": "05:00"}
    assert dict(imported.phones[3].settings) == {"tcpIpApp.sntp.gmtOffset.overrideDHCP": "0",
                                                 "up.backlight.idleIntensity": "2"}
    secrets = (tmp_path / "imported" / "secrets.yaml").read_text()
    assert "pr0v-pass" in secrets and "pw-s1" in secrets and "Adm1n Richer!" in secrets
    for f in ("site.yaml", "extensions.yaml", "phones.yaml", "contacts.yaml"):
        text = (tmp_path / "imported" / f).read_text()
        assert "pr0v-pass" not in text and "pw-" not in text and "Adm1n" not in text


@pytest.mark.parametrize("uc_phone", [False, True])
def test_legacy_phones_spread_by_the_default_polling_come_back_as_the_default(tmp_path, uc_phone):
    """SIP 3.2-or-older phones poll at a fixed minute of the default window, each its own: read
    back, that is the default polling, not a time per phone (with or without a UC phone, whose
    site file says random, among them)."""
    models = {f"0004f2cc000{i}": "IP301" for i in range(3)} | ({"64167fcc0009": "VVX410"} if uc_phone else {})
    files = {"site.yaml": "site: {name: Old, provisioning_url: http://prov.example.com/, sip_server: pbx.example.com,"
                          " timezone: UTC}\n",
             "extensions.yaml": "extensions:\n" + "".join(f'  - {{ext: "20{i}", first_name: P{i}, secret: s-{i}}}\n'
                                                           for i in range(len(models))),
             "phones.yaml": "phones:\n" + "".join(f'  - {{mac: {mac}, model: {m}, lines: ["20{i}"]}}\n'
                                                   for i, (mac, m) in enumerate(models.items()))}
    inv = write_inventory(tmp_path / "inv", files)
    fw = fake_firmware(tmp_path / "firmware", ("3.1.8", "5.9.7"))
    out1 = build(inv, tmp_path / "out1", fw)
    import_tree(out1, tmp_path / "imported", models=models, firmware=fw, env={},
                provisioning_url="http://prov.example.com/")
    imported = load(tmp_path / "imported", env={})
    assert imported.site.polling == load(inv, env={}).site.polling
    assert [p.settings for p in imported.phones] == [()] * len(models)
    times = {effective(out1, mac, ua("IP301")).params["prov.polling.time"] for mac in list(models)[:3]}
    assert len(times) == 3  # spread, each phone its own minute
    assert_same_phones(out1, build(tmp_path / "imported", tmp_path / "out2", fw), models)


def test_keys_that_polygen_would_not_write_stay_raw_settings(tmp_path):
    """A busy lamp field whose label is not its extension's name: no keys: gives that phone its
    parameters, so they stay its settings (exactly as they were), and the import says what is lost."""
    inv = write_inventory(tmp_path / "inv", RICHER)
    fw = fake_firmware(tmp_path / "firmware", ("3.1.8", "3.3.5", "4.0.11", "5.9.7"))
    out1 = build(inv, tmp_path / "out1", fw)
    own = out1 / "64167faa0004-phone.cfg"
    own.write_text(own.read_text().replace('attendant.resourceList.1.label="Robert (Sales)"',
                                           'attendant.resourceList.1.label="Bob at the desk"'))
    inferred, _ = import_tree(out1, tmp_path / "imported", models=RICHER_MODELS, firmware=fw, env={},
                              site_name="Richer Corp", provisioning_url="https://prov.example.org/")
    assert [str(p) for p in inferred.problems] == [
        "contacts/64167faa0004-directory.xml: warning: phone 64167faa0004: its busy lamp fields, speed dials or "
        "key order are not what keys: would give it; the parameters are kept as raw settings, its own "
        "directory's speed dials are not kept"]
    imported = load(tmp_path / "imported", env={})
    phone = next(p for p in imported.phones if p.mac == "64167faa0004")
    assert phone.keys == () and dict(phone.settings)["attendant.resourceList.1.label"] == "Bob at the desk"
    assert next(p for p in imported.phones if p.mac == "0004f2aa0002").keys == (Key("blf", "201"),)
    out2 = build(tmp_path / "imported", tmp_path / "out2", fw)
    before = effective(out1, "64167faa0004", ua("VVX410"))
    after = effective(out2, "64167faa0004", ua("VVX410"))
    assert differences(before.params, after.params, "uc") == []  # type="normal" is the default
    assert [e.get("sd") for e in before.directory if "sd" in e] == ["1", "2"] and \
        not any("sd" in e for e in after.directory)


def test_a_phone_changed_after_the_import_is_a_difference(tmp_path):
    """The comparison used above does see a change: one parameter of one phone."""
    inv = write_inventory(tmp_path / "inv", RICHER)
    fw = fake_firmware(tmp_path / "firmware", ("3.1.8", "3.3.5", "4.0.11", "5.9.7"))
    out1 = build(inv, tmp_path / "out1", fw)
    import_tree(out1, tmp_path / "imported", models=RICHER_MODELS, firmware=fw, env={},
                provisioning_url="https://prov.example.org/")
    phones = tmp_path / "imported" / "phones.yaml"
    phones.write_text(phones.read_text().replace('up.backlight.idleIntensity: "2"', 'up.backlight.idleIntensity: "3"'))
    out2 = build(tmp_path / "imported", tmp_path / "out2", fw)
    with pytest.raises(AssertionError):
        assert_same_phones(out1, out2, RICHER_MODELS, load(inv, env={}).catalog)


# ------------------------------------------------------------------ other systems' trees
def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


def foreign_before(tree: Path, tmp_path: Path) -> Path:
    """A copy of the tree TreeTransport can serve (it needs polygen's User-Agent index): every
    phone gets 000000000000.cfg as it is."""
    copy = tmp_path / "served"
    shutil.copytree(tree, copy)
    (copy / "ua-index.json").write_text(json.dumps({"version": 1, "default": "000000000000.cfg", "models": {}}))
    return copy


def assert_same_effective(before_tree: Path, out: Path, models: dict[str, str], firmware: Path | None = None,
                          catalog=None, replaced=()) -> dict:
    """Strict on what each phone ends up with: a parameter's value, else its firmware default;
    ``replaced``: the parameters the import says it changes, left out."""
    from polygen.importing.defaults import release_params
    from polygen.plan import config_files

    catalog = catalog or Catalog()
    result = {}
    for mac, model in models.items():
        m = catalog.find(model)
        before = effective(before_tree, mac, ua(model, catalog))
        after = effective(out, mac, ua(model, catalog))
        names = [e.rsplit("/", 1)[-1] for e in config_files(m, firmware).split(", ") if e.startswith("firmware/")]
        base = release_params(firmware, m.firmware, names)
        assert [d for d in differences(before.params, after.params, m.dialect, base) if d.name not in replaced] == [], mac
        result[mac] = (before, after)
    return result


FREEPBX_LIKE = {
    # one master per phone, per-extension files, and a sip.cfg carrying the site's values (SIP 3.x)
    "0004f2bb0001.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="phone2001.cfg, sip.cfg" MISC_FILES=""
          LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY="">
          <APPLICATION_SPIP330 APP_FILE_PATH_SPIP330="sip_335.ld" CONFIG_FILES_SPIP330=""/>
        </APPLICATION>
        """,
    "0004f2bb0002.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <APPLICATION APP_FILE_PATH="3111-46162-001.sip.ld" CONFIG_FILES="phone2002.cfg, phone2003.cfg, sip.cfg"
          OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY=""/>
        """,
    "phone2001.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <phone1>
          <reg reg.1.displayName="Dana Scully" reg.1.address="2001" reg.1.label="Dana"
               reg.1.auth.userId="2001" reg.1.auth.password="x-files&amp;1" reg.1.lineKeys="2"/>
          <msg msg.mwi.1.subscribe="2001" msg.mwi.1.callBackMode="contact" msg.mwi.1.callBack="*97"/>
        </phone1>
        """,
    "phone2002.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <phone1><reg reg.1.displayName="Fox Mulder" reg.1.address="2002" reg.1.auth.userId="2002"
          reg.1.auth.password="trustno1" reg.1.server.1.address="pbx.fbi.example" reg.1.server.1.port="5060"/></phone1>
        """,
    "phone2003.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <phone1><reg reg.2.displayName="Walter Skinner" reg.2.address="2003" reg.2.auth.userId="2003"
          reg.2.auth.password="ad-2003" reg.2.label="AD"/>
          <reg reg.1.address="ignored-here" reg.1.displayName="loses: phone2002.cfg came first"/></phone1>
        """,
    "sip.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <sip>
          <voIpProt voIpProt.server.1.address="pbx.fbi.example" voIpProt.server.1.port="5060"/>
          <tcpIpApp tcpIpApp.sntp.address="time.fbi.example" tcpIpApp.sntp.gmtOffset="-18000"
            tcpIpApp.sntp.daylightSavings.enable="1"/>
          <prov prov.polling.enabled="1" prov.polling.mode="abs" prov.polling.time="04:00"/>
          <up up.headsetMode="1"/>
          <feature feature.1.name="presence" feature.1.enabled="0"/>
        </sip>
        """,
    "overrides/0004f2bb0002-web.cfg": """\
        <PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="3"/></PHONE_CONFIG>
        """,
    "000000000000-directory.xml": """\
        <?xml version="1.0" encoding="UTF-8"?>
        <directory><item_list>
          <item><fn>Dana</fn><ln>Scully</ln><ct>2001</ct><sd>1</sd></item>
          <item><fn>Fox</fn><ln>Mulder</ln><ct>2002</ct></item>
          <item><fn>Lone</fn><ln>Gunmen</ln><ct>+12025550100</ct><sd>2</sd><lb>LG</lb></item>
          <item><fn>Deep</fn><ln>Throat</ln><ct></ct></item>
        </item_list></directory>
        """,
    "sip.ld": "firmware",
    "logs/0004f2bb0001-app.log": "0101000001|sip  |4|00|Registration failed\n",
    "old-phone2000.cfg": "<phone1 reg.1.address=\"2000\"/>\n",
}
FREEPBX_MODELS = {"0004f2bb0001": "IP330", "0004f2bb0002": "VVX410"}


def test_a_tree_with_a_master_per_phone_and_files_per_extension(tmp_path):
    tree = write_tree(tmp_path / "tftp", FREEPBX_LIKE)
    fw = fake_firmware(tmp_path / "firmware", ("3.3.5", "5.9.7"))
    inferred, written = import_tree(tree, tmp_path / "imported", firmware=fw, env={},
                                    provisioning_url="http://prov.fbi.example/")
    assert [str(p) for p in inferred.problems if p.severity == "error"] == []
    out = build(tmp_path / "imported", tmp_path / "out", fw)
    pairs = assert_same_effective(foreign_before(tree, tmp_path), out, FREEPBX_MODELS, fw)
    # the models came from the masters: its per-model element, and a part number in the firmware path
    inv = load(tmp_path / "imported", env={})
    assert [(p.mac, p.model, p.lines) for p in inv.phones] == [
        ("0004f2bb0001", "IP330", ("2001",)), ("0004f2bb0002", "VVX410", ("2002", "2003"))]
    assert (inv.site.sip_server, inv.site.sip_port, inv.site.timezone, inv.site.ntp_server) == (
        "pbx.fbi.example", 5060, "America/New_York", "time.fbi.example")
    assert (inv.site.polling.mode, inv.site.polling.time) == ("abs", "04:00")
    # no digit map before, and Polycom's default dials 2001-2003 whole: none is written now either
    assert (inv.site.dialing, inv.site.digitmap) == (Dialing(digitmap=""), None)
    e = inv.extensions
    assert (e["2001"].first_name, e["2001"].last_name, e["2001"].label, e["2001"].secret, e["2001"].directory) == (
        "Dana", "Scully", "Dana", "x-files&1", True)
    assert (e["2003"].first_name, e["2003"].last_name, e["2003"].directory) == ("Walter", "Skinner", False)
    assert inv.contacts == (Contact("+12025550100", "Lone", "Gunmen", "LG"),)
    # what the phones never had, polygen's build would add: pinned back to the firmware's defaults
    before, after = pairs["0004f2bb0001"]
    assert "log.render.file.upload.append" not in before.params
    assert after.params["tcpIpApp.sntp.gmtOffset.overrideDHCP"] == "0"  # default 0, polygen writes 1
    assert after.params["reg.1.lineKeys"] == "2"
    # the web override became the phone's own setting; phone2003.cfg's reg.1 lost as before
    assert dict(inv.phones[1].settings)["up.backlight.idleIntensity"] == "3"
    assert pairs["0004f2bb0002"][1].params["reg.1.address"] == "2002"
    shared = {k: v for k, v in inv.site.settings}
    assert shared["up.headsetMode"] == "1" and "prov.polling.enabled" not in shared  # polygen writes 1 too
    assert shared["tcpIpApp.sntp.address.overrideDHCP"] == "0"
    assert inferred.unused == [
        ("old-phone2000.cfg", "a configuration file no phone's CONFIG_FILES lists"),
        ("sip.ld", "firmware: polygen links firmware from its --firmware directory"),
        ("logs/0004f2bb0001-app.log", "a log a phone uploaded, not configuration"),
    ]
    warnings = [str(p) for p in inferred.problems]
    assert warnings == [
        "000000000000-directory.xml: warning: directory entry of extension 2001: <sd> not kept (the directory "
        "lists an extension by its name and number)",
        "000000000000-directory.xml: warning: directory entry +12025550100: <sd> not kept (contacts have a number, "
        "names and a label)",
        "000000000000-directory.xml: warning: directory entry (no number) not kept: no usable contact number <ct>",
        # the IP 330 runs UC Software 3.3.5, which has no feature.*: kept, and said so by the check
        f"{tmp_path}/imported/site.yaml:15: site.settings.feature.1.enabled: warning: unknown Polycom parameter",
        f"{tmp_path}/imported/site.yaml:16: site.settings.feature.1.name: warning: unknown Polycom parameter",
    ]
    where = {(p.name, p.destination): p for p in inferred.placements}
    assert where[("msg.mwi.1.callBack", "phone settings")].sources == ["phone2001.cfg"]
    assert where[("feature.1.name", "site settings")].phones == ["0004f2bb0001", "0004f2bb0002"]
    assert where[("tcpIpApp.sntp.gmtOffset.overrideDHCP", "phone settings")].sources == [""]


UC_WAZO_LIKE = {
    # one default master, [PHONE_MAC_ADDRESS]-user.cfg first, a common file, UC <polycomConfig> files
    "000000000000.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-user.cfg, common.cfg"
          MISC_FILES="" LOG_FILE_DIRECTORY="" OVERRIDES_DIRECTORY="" CONTACTS_DIRECTORY="contacts">
          <APPLICATION_VVX410 APP_FILE_PATH_VVX410="sip.ld" CONFIG_FILES_VVX410=""/>
        </APPLICATION>
        """,
    "common.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <polycomConfig xsi:noNamespaceSchemaLocation="polycomConfig.xsd"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <device device.set="1" device.prov.serverName="prov.wazo.example" device.prov.serverType="2"
            device.prov.user.set="1" device.prov.user="phones" device.prov.password.set="1"
            device.prov.password="Pr0v-Secret"/>
          <voIpProt voIpProt.server.1.address="10.0.0.5"/>
          <tcpIpApp tcpIpApp.sntp.gmtOffset="19800" tcpIpApp.sntp.gmtOffset.overrideDHCP="1"
            tcpIpApp.sntp.daylightSavings.enable="0"/>
          <prov prov.polling.enabled="1" prov.polling.mode="rel" prov.polling.period="7200"/>
        </polycomConfig>
        """,
    "64167fcc0001-user.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <polycomConfig><reg reg.1.address="100" reg.1.auth.userId="100" reg.1.auth.password="p100"
          reg.1.displayName="Reception"/></polycomConfig>
        """,
    "64167fcc0002-user.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <polycomConfig><reg reg.1.address="101" reg.1.auth.userId="101" reg.1.auth.password="p101"
          reg.1.displayName="Priya Raman"/>
          <tcpIpApp tcpIpApp.sntp.gmtOffset="3600" tcpIpApp.sntp.daylightSavings.enable="1"
            tcpIpApp.sntp.daylightSavings.start.month="4" tcpIpApp.sntp.daylightSavings.stop.month="9"/>
        </polycomConfig>
        """,
    "64167fcc0003-user.cfg": """\
        <?xml version="1.0" standalone="yes"?>
        <polycomConfig><reg reg.1.address="102@pbx" reg.1.auth.password="p102"/></polycomConfig>
        """,
    "contacts/000000000000-directory.xml": """\
        <directory><item_list>
          <item><fn>Priya</fn><ln>Raman</ln><ct>101</ct></item>
          <item><fn>Front</fn><ln>Desk</ln><ct>100</ct></item>
        </item_list></directory>
        """,
}
UC_MODELS = {"64167fcc0001": "VVX410", "64167fcc0002": "VVX410", "64167fcc0003": "VVX410"}
DIAL_PLAN = ("dialplan.digitmap", "dialplan.digitmap.timeOut", "dialplan.impossibleMatchHandling")


def test_a_uc_tree_with_one_default_master(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    fw = tmp_path / "firmware"
    inferred, _ = import_tree(tree, tmp_path / "imported", default_model="VVX410", firmware=fw, env={})
    out = build(tmp_path / "imported", tmp_path / "out", fw)
    pairs = assert_same_effective(foreign_before(tree, tmp_path), out, UC_MODELS, fw, replaced=DIAL_PLAN)
    inv = load(tmp_path / "imported", env={})
    # no digit map, and Polycom's default sends 100 as "10": polygen's map replaces it, said in a warning
    assert (inv.site.dialing, inv.site.digitmap) == (Dialing(), "1xx")
    assert {p: pairs["64167fcc0001"][1].params[p] for p in DIAL_PLAN} == {
        "dialplan.digitmap": "1xx", "dialplan.digitmap.timeOut": "3", "dialplan.impossibleMatchHandling": "2"}
    assert (f"{tree}: warning: the phones have no digit map, and Polycom's default cannot dial every extension "
            "(it sends some early): the import lets polygen write one that does (README, \"Dialling\")") \
        in [str(p) for p in inferred.problems]
    # the provisioning URL and credentials came from device.prov.*; the password into secrets.yaml
    assert inv.site.provisioning_url == "http://prov.wazo.example/"
    assert (inv.site.auth.user, inv.site.auth.password) == ("phones", "Pr0v-Secret")
    assert "Pr0v-Secret" not in (tmp_path / "imported" / "site.yaml").read_text()
    assert (inv.site.polling.mode, inv.site.polling.period) == ("rel", 7200)
    # 19800 s without DST is India; 3600 s with DST from April to September is no zone at all
    assert inv.site.timezone == "Asia/Kolkata"
    assert [p.timezone for p in inv.phones] == [None, None, None]
    assert dict(inv.phones[1].settings)["tcpIpApp.sntp.daylightSavings.start.month"] == "4"
    assert dict(inv.phones[1].settings)["tcpIpApp.sntp.gmtOffset"] == "3600"
    assert pairs["64167fcc0002"][1].params["tcpIpApp.sntp.daylightSavings.stop.month"] == "9"
    # 'Front Desk' is extension 100's name in the directory, 'Reception' its display name
    e = inv.extensions
    assert (e["100"].first_name, e["100"].last_name, e["100"].display_name) == ("Front", "Desk", "Reception")
    # 102@pbx is no extension polygen can name: that registration stays raw, on its phone
    assert inv.phones[2].lines == ()
    assert dict(inv.phones[2].settings)["reg.1.address"] == "102@pbx"
    warnings = [str(p) for p in inferred.problems]
    assert ("64167fcc0003-user.cfg: warning: phone 64167fcc0003: reg.1 and later registrations kept as raw "
            "settings: '102@pbx' is not an extension polygen can name (letters, digits, '.', '+', '-')") in warnings
    assert ("64167fcc0002-user.cfg: warning: phone 64167fcc0002: its time settings (tcpIpApp.sntp.gmtOffset "
            "'3600', daylightSavings.*) match no IANA time zone; they are kept as raw settings") in warnings
    assert ("64167fcc0003-user.cfg: warning: reg.1.auth.password holds a password and is kept as a raw setting, "
            "in a file meant for git; move the inventory's settings that hold passwords out of git, or change "
            "the password") in warnings


# ------------------------------------------------------------------ what cannot be imported
def test_phones_whose_model_cannot_be_told_are_reported_and_nothing_is_written(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    with pytest.raises(InventoryError) as exc:
        import_tree(tree, tmp_path / "imported", models={"64:16:7f:cc:00:01": "VVX410", "64167fcc0002": "VVX41"})
    assert [str(p) for p in exc.value.problems] == [
        "--model: unknown model 'VVX41' for 64167fcc0002 (did you mean VVX410?)",
        "64167fcc0002-user.cfg: phone 64167fcc0002: cannot tell its model; give it with --model "
        "64167fcc0002=MODEL (e.g. VVX410) or --default-model MODEL",
        "64167fcc0003-user.cfg: phone 64167fcc0003: cannot tell its model; give it with --model "
        "64167fcc0003=MODEL (e.g. VVX410) or --default-model MODEL",
    ]
    assert str(exc.value) == f"3 problems in {tree}; nothing written"
    assert not (tmp_path / "imported").exists()


def test_a_broken_config_file_is_an_error(tmp_path):
    files = dict(UC_WAZO_LIKE)
    files["common.cfg"] = "<polycomConfig><unclosed></polycomConfig>"
    tree = write_tree(tmp_path / "prov", files)
    with pytest.raises(InventoryError) as exc:
        import_tree(tree, tmp_path / "imported", default_model="VVX410")
    assert "000000000000.cfg: phone 64167fcc0001: common.cfg is not well-formed XML: mismatched tag: " \
           "line 1, column 27" in [str(p) for p in exc.value.problems]
    assert not (tmp_path / "imported").exists()


def test_an_empty_directory_has_no_phones(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InventoryError) as exc:
        import_tree(tmp_path / "empty", tmp_path / "imported")
    assert str(exc.value.problems[0]).startswith(f"{tmp_path / 'empty'}: no phones found")


def test_it_refuses_to_overwrite_an_inventory(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    into = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, into)
    before = {p.name: p.read_bytes() for p in into.iterdir()}
    with pytest.raises(Exception) as exc:
        import_tree(tree, into, default_model="VVX410")
    assert str(exc.value) == (f"{into}/site.yaml, {into}/extensions.yaml, {into}/phones.yaml already exist: add "
                              "to that inventory with --merge, or import --into a new directory")
    assert {p.name: p.read_bytes() for p in into.iterdir()} == before


# ------------------------------------------------------------------ the comparison itself
def test_differences_count_an_unset_parameter_as_its_default():
    assert differences({}, {"log.render.file": "1"}, "uc") == []
    assert differences({}, {"prov.polling.enabled": "1"}, "uc") == [Difference("prov.polling.enabled", "0", "1")]
    assert differences({"log.render.file.upload.period": "172800"}, {}, "sip3") == []
    assert differences({"log.render.file.upload.period": "172800"}, {}, "uc") == [
        Difference("log.render.file.upload.period", "172800", "86400")]
    # parameters polygen never writes: present on both sides with the same text, or on neither
    assert differences({"up.headsetMode": "0"}, {}, "uc") == [Difference("up.headsetMode", "0", None)]
    assert differences({"up.headsetMode": "0"}, {"up.headsetMode": "00"}, "uc") == [
        Difference("up.headsetMode", "0", "00")]
    assert differences({"reg.3.auth.password": "a"}, {"reg.3.auth.password": "b"}, "uc") == [
        Difference("reg.3.auth.password", "a", "b")]
    assert differences({"reg.3.type": "private"}, {}, "uc") == []
    # the release's own files stand for the defaults of a SIP 3.x phone
    assert differences({}, {"up.oneTouchVoiceMail": "0"}, "sip3", {"up.oneTouchVoiceMail": "0"}) == []


# ------------------------------------------------------------------ the command
def invoke(args, env=None):
    from click.testing import CliRunner

    from polygen.cli import cli

    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_cli_report_as_json_and_models_from_the_environment(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    r = invoke(["import", "tree", str(tree), "--format", "json"],
               env={"POLYGEN_IMPORT_INTO": str(tmp_path / "inv"), "POLYGEN_IMPORT_DEFAULT_MODEL": "VVX410",
                    "POLYGEN_FIRMWARE": str(tmp_path / "fw")})
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["phones"], doc["extensions"], doc["contacts"]) == (3, 2, 0)
    assert [w["path"] for w in doc["written"]] == [str(tmp_path / "inv" / n) for n in (
        "site.yaml", "extensions.yaml", "phones.yaml", "secrets.yaml")]
    assert {"name": "reg.1.auth.password", "value": "********", "destination": "phone settings",
            "phones": ["64167fcc0003"], "sources": ["64167fcc0003-user.cfg"]} in doc["parameters"]
    assert doc["unused_files"] == []
    assert "Pr0v-Secret" not in r.output and "p102" not in r.output


def test_cli_dry_run_writes_nothing(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    r = invoke(["import", "tree", str(tree), "--into", str(tmp_path / "inv"), "--dry-run",
                "--model", "64167fcc0001=VVX410", "--model", "64167fcc0002=VVX410", "--model", "64167fcc0003=VVX410"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:2] == [f"imported 3 phones, 2 extensions, 0 contacts into {tmp_path / 'inv'}",
                                         "  (dry run: nothing written)"]
    assert not (tmp_path / "inv").exists()


def test_cli_errors_list_every_problem_and_exit_1(tmp_path):
    tree = write_tree(tmp_path / "prov", UC_WAZO_LIKE)
    r = invoke(["import", "tree", str(tree), "--into", str(tmp_path / "inv"), "--model", "64167fcc0001=VVX410"])
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "64167fcc0002-user.cfg: phone 64167fcc0002: cannot tell its model; give it with --model 64167fcc0002=MODEL "
        "(e.g. VVX410) or --default-model MODEL",
        "64167fcc0003-user.cfg: phone 64167fcc0003: cannot tell its model; give it with --model 64167fcc0003=MODEL "
        "(e.g. VVX410) or --default-model MODEL",
        f"Error: 2 problems in {tree}; nothing written",
    ]
    r = invoke(["import", "tree", str(tree), "--model", "VVX410"])
    assert r.exit_code == 2 and "'VVX410': write it as MAC=MODEL, e.g. 0004f2000330=IP330" in r.stderr


@pytest.mark.parametrize("args", [["import"], ["import", "csv"], ["import", "tree"], ["export"], ["export", "csv"]])
def test_every_command_has_an_example_in_its_help(args):
    r = invoke([*args, "--help"])
    assert r.exit_code == 0 and "Example:" in r.stdout


def test_config_files_outside_the_tree_are_not_read(tmp_path):
    (tmp_path / "outside.cfg").write_text('<x reg.1.address="9999" reg.1.auth.password="stolen"/>')
    files = dict(UC_WAZO_LIKE)
    files["000000000000.cfg"] = files["000000000000.cfg"].replace(
        'CONFIG_FILES="[PHONE_MAC_ADDRESS]-user.cfg, common.cfg"',
        f'CONFIG_FILES="[PHONE_MAC_ADDRESS]-user.cfg, common.cfg, ../outside.cfg, {tmp_path}/outside.cfg, '
        'http://127.0.0.1:9/x.cfg"')
    tree = write_tree(tmp_path / "prov", files)
    inferred, _ = import_tree(tree, tmp_path / "inv", default_model="VVX410", dry_run=True)
    warnings = [str(p) for p in inferred.problems if p.severity == "warning"]
    for name in ("../outside.cfg", f"{tmp_path}/outside.cfg", "http://127.0.0.1:9/x.cfg"):
        assert (f"000000000000.cfg: warning: phone 64167fcc0001: {name} (CONFIG_FILES) answered 404: the phone ran "
                "without it") in warnings
    assert "9999" not in repr(inferred.draft) and "stolen" not in repr(inferred.draft)


def test_a_phone_directory_of_its_own_is_added_to_the_company_directory(tmp_path):
    files = dict(UC_WAZO_LIKE)
    files["contacts/64167fcc0001-directory.xml"] = (
        "<directory><item_list><item><fn>Pizza</fn><ct>5550199</ct></item></item_list></directory>")
    tree = write_tree(tmp_path / "prov", files)
    inferred, _ = import_tree(tree, tmp_path / "inv", default_model="VVX410", env={})
    assert "contacts/64167fcc0001-directory.xml: warning: phone 64167fcc0001 has a directory of its own; polygen " \
           "serves one company directory, to which its entries are added" in [str(p) for p in inferred.problems]
    assert load(tmp_path / "inv", env={}).contacts == (Contact("5550199", "Pizza"),)


@pytest.mark.parametrize("server_name, server_type, url", [
    ("prov.example.net", "3", "https://prov.example.net/"),
    ("phones:s3cret@prov.example.net", None, "http://prov.example.net/"),
    ("https://phones:s3cret@prov.example.net:8443/pv/", None, "https://prov.example.net:8443/pv/"),
])
def test_the_provisioning_url_comes_from_device_prov_without_credentials(tmp_path, server_name, server_type, url):
    files = dict(UC_WAZO_LIKE)
    kind = f' device.prov.serverType="{server_type}"' if server_type else ""
    files["common.cfg"] = files["common.cfg"].replace(
        'device.prov.serverName="prov.wazo.example" device.prov.serverType="2"',
        f'device.prov.serverName="{server_name}"{kind}')
    tree = write_tree(tmp_path / "prov", files)
    inferred, _ = import_tree(tree, tmp_path / "inv", default_model="VVX410", dry_run=True, env={})
    assert inferred.draft.site["provisioning_url"] == url


def test_reading_a_large_tree_shows_progress_on_a_terminal_only(tmp_path):
    import subprocess
    import sys

    from .test_faults import write_inventory
    from .test_progress import on_a_terminal

    write_inventory(tmp_path / "inv", 600, 1)
    build(tmp_path / "inv", tmp_path / "out", tmp_path / "fw")

    def args(into):
        return [sys.executable, "-m", "polygen", "import", "tree", str(tmp_path / "out"), "--into", str(into),
                "--default-model", "VVX410", "--provisioning-url", "http://prov.example.com/", "--dry-run"]
    text = on_a_terminal(tmp_path, args(tmp_path / "a"))
    assert "Reading phones" in text and "100%" in text
    assert "imported 600 phones, 600 extensions, 0 contacts into" in text
    r = subprocess.run(args(tmp_path / "b"), capture_output=True, text=True)
    assert r.returncode == 0 and "Reading phones" not in r.stdout + r.stderr
    assert r.stdout.startswith("imported 600 phones")


def test_a_master_named_in_capitals_is_found_as_a_phone_would_on_a_case_blind_server(tmp_path):
    files = {k: v for k, v in FREEPBX_LIKE.items() if k != "0004f2bb0002.cfg"}
    files["0004F2BB0002.cfg"] = FREEPBX_LIKE["0004f2bb0002.cfg"]
    tree = write_tree(tmp_path / "tftp", files)
    inferred, _ = import_tree(tree, tmp_path / "inv", provisioning_url="http://prov.fbi.example/", dry_run=True,
                              env={})
    phones = {e.data["mac"]: e.data for e in inferred.draft.entries if e.section == "phones"}
    assert phones["00:04:f2:bb:00:02"]["model"] == "VVX410"  # from the part number of its own master
    assert phones["00:04:f2:bb:00:02"]["lines"] == ["2002", "2003"]
