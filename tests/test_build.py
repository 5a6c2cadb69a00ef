"""polygen build: the tree, its properties (XML, escaping, modes, determinism, atomic swap)."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from polygen.build import BuildOptions, run
from polygen.errors import BuildError, InventoryError
from polygen.write import BUILD_RECORD, MANIFEST, current_generation, gens_dir


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != MANIFEST}


def test_example_build_has_every_file(built):
    files = set(tree(built))
    assert {
        "000000000000.cfg", "ua-index.json", "site.cfg",
        "contacts/000000000000-directory.xml",
        "bootstrap/SPIP330.cfg", "bootstrap/SPIP331.cfg", "bootstrap/SSIP5000.cfg", "bootstrap/VVX410.cfg",
        "0004f2000330-phone.cfg", "0004f2000331-phone.cfg", "0004f2005000-phone.cfg", "64167f000410-phone.cfg",
        "firmware/3.3.5/sip.ld", "firmware/4.0.15/sip.ld", "firmware/5.9.7/sip.ver",
    } <= files
    # every example phone runs UC Software 3.3 or later: no SIP 3.x files (docs/polycom.md §10)
    assert "site-sip3.cfg" not in files and not any(f.endswith(("/sip.cfg", "/phone1.cfg")) for f in files)
    assert "firmware/5.9.7/README.txt" not in files  # only firmware files are published
    assert not any("directory.xml" in f and not f.endswith("000000000000-directory.xml") for f in files)


def test_every_output_file_is_well_formed_xml(built):
    for rel, data in tree(built).items():
        if rel.endswith((".cfg", ".xml")) and not rel.startswith("firmware/"):
            ET.fromstring(data)  # raises on any malformed file


def test_values_are_escaped(built):
    root = ET.fromstring((built / "64167f000410-phone.cfg").read_bytes())
    reg = root.find("reg").attrib
    assert reg["reg.3.auth.password"] == 'p<ss>&"word'
    assert reg["reg.3.displayName"] == "Renée O'Brien & Søn"
    d = ET.fromstring((built / "contacts/000000000000-directory.xml").read_bytes())
    names = [(i.findtext("fn"), i.findtext("ln"), i.findtext("ct")) for i in d.iter("item")]
    assert ("Renée", "O'Brien & Søn", "1004") in names
    assert ("Front", "Desk", "1000") in names  # mailbox is the directory contact
    assert not any(ct == "1099" for *_, ct in names)  # directory: false


def test_secret_files_are_not_world_readable(built):
    for p in built.glob("*-phone.cfg"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert stat.S_IMODE((built / "site.cfg").stat().st_mode) == 0o644


def test_ua_index_maps_tokens_to_bootstraps(built):
    index = json.loads((built / "ua-index.json").read_text())
    assert index["default"] == "000000000000.cfg"
    assert index["models"]["SPIP_330"] == "bootstrap/SPIP330.cfg"
    assert index["models"]["VVX_410"] == "bootstrap/VVX410.cfg"
    for target in index["models"].values():
        assert (built / target).is_file()


def test_bootstrap_points_at_firmware_config_and_directories(built):
    root = ET.fromstring((built / "bootstrap/SPIP330.cfg").read_bytes())
    assert root.tag == "APPLICATION"
    a = root.attrib
    assert a["APP_FILE_PATH"] == "firmware/3.3.5/sip.ld"
    assert a["CONFIG_FILES"].split(", ") == ["[PHONE_MAC_ADDRESS]-phone.cfg", "site.cfg"]
    assert a["LOG_FILE_DIRECTORY"] == "logs" and a["CONTACTS_DIRECTORY"] == "contacts"
    el = root.find("APPLICATION_SPIP330")
    assert el.attrib["APP_FILE_PATH_SPIP330"] == "firmware/3.3.5/sip.ld"
    default = ET.fromstring((built / "000000000000.cfg").read_bytes())
    assert {c.tag for c in default} == {"APPLICATION_SPIP330", "APPLICATION_SPIP331", "APPLICATION_SSIP5000",
                                        "APPLICATION_VVX410"}


def test_dialects(built):
    assert ET.fromstring((built / "0004f2000330-phone.cfg").read_bytes()).tag == "polycomConfig"  # UC 3.3.5
    assert ET.fromstring((built / "64167f000410-phone.cfg").read_bytes()).tag == "polycomConfig"  # UC 5.9.7
    site = ET.fromstring((built / "site.cfg").read_bytes())
    prov = site.find("prov").attrib
    # the inventory gives no polling: the phones spread over 01:00-05:00
    assert prov == {"prov.polling.enabled": "1", "prov.polling.mode": "random", "prov.polling.period": "86400",
                    "prov.polling.time": "01:00", "prov.polling.timeRandomEnd": "05:00"}


def test_time_settings_follow_the_zone(built):
    tcp = ET.fromstring((built / "64167f000410-phone.cfg").read_bytes()).find("tcpIpApp").attrib
    assert tcp["tcpIpApp.sntp.gmtOffset"] == "-18000"
    assert tcp["tcpIpApp.sntp.daylightSavings.start.month"] == "3"
    assert tcp["tcpIpApp.sntp.daylightSavings.start.date"] == "8"  # second Sunday
    assert tcp["tcpIpApp.sntp.daylightSavings.stop.month"] == "11"


def test_firmware_is_linked_not_copied(built, firmware_dir):
    src = firmware_dir / "5.9.7" / "sip.ld"
    dst = built / "firmware/5.9.7/sip.ld"
    assert os.path.samefile(src, dst)


def test_output_is_byte_identical_for_the_same_input(build_opts, tmp_path):
    run(build_opts)
    first = tree(build_opts.out)
    other = BuildOptions(build_opts.inventory, tmp_path / "out2", build_opts.templates, build_opts.firmware)
    run(other)
    assert tree(other.out) == first


def test_noop_rebuild_writes_nothing(build_opts):
    r1 = run(build_opts)
    gen = current_generation(build_opts.out)
    r2 = run(build_opts)
    assert r1.changed and r1.written > 0
    assert not r2.changed and r2.written == 0 and r2.unchanged == r1.written
    assert current_generation(build_opts.out) == gen
    assert r2.summary() == (f"4 phones: nothing changed ({r1.written} files unchanged, generation {gen.name}, "
                            f"digest {r1.digest[:16]})")


def test_one_phone_change_writes_only_that_phone(build_opts):
    run(build_opts)
    before = {p.name: p.stat().st_ino for p in build_opts.out.rglob("*") if p.is_file()}
    phones = build_opts.inventory / "phones.yaml"
    phones.write_text(phones.read_text().replace('up.backlight.idleIntensity: "1"', 'up.backlight.idleIntensity: "2"'))
    r = run(build_opts)
    assert r.paths == ("64167f000410-phone.cfg",)
    after = {p.name: p.stat().st_ino for p in build_opts.out.rglob("*") if p.is_file()}
    changed = {n for n in after if before.get(n) != after[n]}
    assert changed == {"64167f000410-phone.cfg", MANIFEST, BUILD_RECORD}


def test_removed_phone_files_disappear(build_opts):
    run(build_opts)
    phones = build_opts.inventory / "phones.yaml"
    text = phones.read_text()
    start = text.index("  - mac: 00:04:f2:00:03:30")
    end = text.index("  - mac: 00-04-F2-00-03-31")
    phones.write_text(text[:start] + text[end:])
    r = run(build_opts)
    assert r.removed == 4  # the phone file, the IP 330 bootstrap and its 3.3.5 firmware files
    assert not (build_opts.out / "firmware/3.3.5").exists()
    assert not (build_opts.out / "0004f2000330-phone.cfg").exists()
    assert not (build_opts.out / "bootstrap/SPIP330.cfg").exists()
    assert "SPIP_330" not in json.loads((build_opts.out / "ua-index.json").read_text())["models"]


def test_a_broken_link_in_a_release_no_phone_runs_does_not_stop_the_build(build_opts):
    # releases unpacked by hand, half-removed, or linked to an unmounted disk, that no phone runs
    fw = build_opts.firmware
    (fw / "4.1.0").mkdir()
    (fw / "4.1.0" / "sip.ld").symlink_to(fw / "gone" / "sip.ld")
    (fw / "6.0.0" / "Config").mkdir(parents=True)
    (fw / "6.0.0" / "Config" / "polycomConfig.xsd").symlink_to("/nonexistent/polycomConfig.xsd")
    (fw / "6.0.0" / "sip.ld").symlink_to("sip-gone.ld")
    (fw / "7.0.0").symlink_to(fw / "gone-release")  # a whole release linked to nowhere
    (fw / "5.9.7" / "README.txt").unlink()  # in a release phones run, but not a file they fetch
    (fw / "5.9.7" / "README.txt").symlink_to("/nonexistent/README.txt")
    r = run(build_opts)
    assert r.phones == 4 and r.written == 19
    assert sorted(p.name for p in (build_opts.out / "firmware").iterdir()) == ["3.3.5", "4.0.15", "5.9.7"]
    assert run(build_opts).written == 0


XSD = ('<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"><xsd:attribute name="only.here"/>'
       '<xsd:attribute name="up.backlight.idleIntensity"/></xsd:schema>\n')


def unknown_to_597(build_opts) -> list[str]:
    """A build's warnings about phone settings 5.9.7 does not know (the VVX 410 has only.here)."""
    phones = build_opts.inventory / "phones.yaml"
    if "only.here" not in phones.read_text():
        phones.write_text(phones.read_text().replace('idleIntensity: "1"', 'idleIntensity: "1"\n      only.here: "1"'))
    return [w.split(": ", 1)[1] for w in run(build_opts).warnings if "unknown to 5.9.7" in w]


def test_a_repaired_link_in_a_release_is_seen_by_the_next_build(build_opts, tmp_path):
    # the release's XSD (parameter names, not a file phones fetch) links to a disk not mounted yet:
    # the shipped names are used; once the disk is there, the next build must not reuse that load
    disk = tmp_path / "disk"  # outside firmware/: only the link itself is under it
    (build_opts.firmware / "5.9.7" / "polycomConfig.xsd").symlink_to(disk / "polycomConfig.xsd")
    assert unknown_to_597(build_opts) == ["phones[3].settings.only.here: warning: unknown to 5.9.7 firmware"]
    disk.mkdir()
    (disk / "polycomConfig.xsd").write_text(XSD)
    assert unknown_to_597(build_opts) == []


def test_a_release_linked_from_elsewhere_is_followed(build_opts, tmp_path):
    release = build_opts.firmware / "5.9.7"
    release.rename(tmp_path / "5.9.7")
    release.symlink_to(tmp_path / "5.9.7")
    assert unknown_to_597(build_opts) == ["phones[3].settings.only.here: warning: unknown to 5.9.7 firmware"]
    (tmp_path / "5.9.7" / "polycomConfig.xsd").write_text(XSD)  # a file added behind the link
    assert unknown_to_597(build_opts) == []
    assert os.path.samefile(build_opts.out / "firmware/5.9.7/sip.ld", tmp_path / "5.9.7" / "sip.ld")


def test_a_broken_link_to_a_file_phones_fetch_is_an_error_naming_it(build_opts):
    run(build_opts)
    before = tree(build_opts.out)
    gen = os.readlink(build_opts.out)
    link = build_opts.firmware / "5.9.7" / "sip.ld"
    link.unlink()
    link.symlink_to("/nonexistent/5.9.7/sip.ld")
    with pytest.raises(InventoryError) as exc:  # found by inventory.load, as `polygen check` finds it
        run(build_opts)
    assert [str(p) for p in exc.value.problems] == [
        f"{link}: a broken symbolic link (to /nonexistent/5.9.7/sip.ld), and phones running 5.9.7 fetch this "
        "file: point the link at it, or remove it"]
    assert os.readlink(build_opts.out) == gen and tree(build_opts.out) == before
    assert sorted(p.name for p in gens_dir(build_opts.out).glob("g*")) == [gen.rsplit("/", 1)[-1]]


def test_failed_build_leaves_out_exactly_as_it_was(build_opts):
    run(build_opts)
    before = tree(build_opts.out)
    gen = os.readlink(build_opts.out)
    (build_opts.inventory / "phones.yaml").write_text("phones:\n  - mac: nonsense\n    model: IP330\n    lines: []\n")
    with pytest.raises(InventoryError):
        run(build_opts)
    assert os.readlink(build_opts.out) == gen and tree(build_opts.out) == before


def test_template_error_leaves_out_untouched(build_opts, tmp_path):
    import shutil

    run(build_opts)
    before = tree(build_opts.out)
    tdir = tmp_path / "templates"
    shutil.copytree(build_opts.templates, tdir)
    (tdir / "phone.cfg.j2").write_text("{{ no_such_variable }}")
    from polygen.errors import TemplateError

    with pytest.raises(TemplateError, match="no_such_variable"):
        run(BuildOptions(build_opts.inventory, build_opts.out, tdir, build_opts.firmware))
    assert tree(build_opts.out) == before
    assert not [p for p in gens_dir(build_opts.out).iterdir() if p.name.startswith("tmp-")]


def test_only_two_generations_are_kept(build_opts):
    phones = build_opts.inventory / "phones.yaml"
    text = phones.read_text()
    for i in range(2, 6):
        phones.write_text(text.replace('idleIntensity: "1"', f'idleIntensity: "{i}"'))
        assert run(build_opts).changed
    gens = sorted(p.name for p in gens_dir(build_opts.out).iterdir() if p.name.startswith("g"))
    assert len(gens) == 2 and os.readlink(build_opts.out).endswith(gens[-1])


def test_refuses_to_replace_a_foreign_directory(build_opts):
    build_opts.out.mkdir()
    (build_opts.out / "keep-me.txt").write_text("precious")
    with pytest.raises(BuildError, match="did not create"):
        run(build_opts)
    assert (build_opts.out / "keep-me.txt").read_text() == "precious"


def test_read_only_parent_gives_a_clear_error(build_opts, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(BuildError):
            run(build_opts)
    finally:
        tmp_path.chmod(0o755)


def test_large_files_are_streamed_with_the_same_bytes(build_opts, tmp_path, monkeypatch):
    """Files over STREAM_LIMIT are written while they render; the bytes are the same."""
    from polygen import write

    run(build_opts)
    normal = tree(build_opts.out)
    monkeypatch.setattr(write, "BLOCK", 16)
    monkeypatch.setattr(write, "STREAM_LIMIT", 64)
    other = BuildOptions(build_opts.inventory, tmp_path / "streamed", build_opts.templates, build_opts.firmware)
    run(other)
    assert tree(other.out) == normal
    for p in other.out.glob("*-phone.cfg"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    # new inputs, same bytes: a streamed file keeps its inode too
    import shutil

    tdir = tmp_path / "templates"
    shutil.copytree(build_opts.templates, tdir)
    other = BuildOptions(build_opts.inventory, tmp_path / "streamed", tdir, build_opts.firmware)
    run(other)
    directory = other.out / "contacts/000000000000-directory.xml"
    ino = directory.stat().st_ino
    boot = tdir / "bootstrap.cfg.j2"
    boot.write_text(boot.read_text().replace("do not edit.", "do not edit!"))
    r = run(other)
    assert "000000000000.cfg" in r.paths and "contacts/000000000000-directory.xml" not in r.paths
    assert directory.stat().st_ino == ino


def test_a_model_override_rewrites_that_models_phones(build_opts):
    run(build_opts)
    (build_opts.inventory / "models.yaml").write_text('models:\n  VVX410: {name: "VVX 410 (lobby)"}\n')
    r = run(build_opts)
    # the name is not in the shipped phone template, so the bytes stay and the inode is kept,
    # but the key saw the change (a custom template printing model.name would be rewritten)
    from polygen.write import current_generation, read_manifest

    assert r.changed and r.written == 0
    assert read_manifest(current_generation(build_opts.out))["64167f000410-phone.cfg"][1] is not None


def test_the_manifest_keeps_the_phone_index_and_a_build_without_one_is_redone(build_opts):
    """The sidecar and `polygen status` read each phone's model, release and lines from the
    manifest. A generation built before the manifest kept them is written anew by the next
    build (hard links, the same files), though no file changed; after that a build is a no-op."""
    import json

    from polygen.build import run
    from polygen.write import MANIFEST, current_generation

    run(build_opts)
    gen = current_generation(build_opts.out)
    doc = json.loads((gen / MANIFEST).read_text())
    assert doc["site"] == {"name": "Example Corp"}
    assert doc["phones"]["0004f2000331"] == {"model": "IP331", "ua_token": "SPIP_331", "release": "4.0.15",
                                             "lines": ["1002"]}
    assert not run(build_opts).changed
    del doc["phones"], doc["site"]  # as an older polygen wrote it
    (gen / MANIFEST).write_text(json.dumps(doc))
    again = run(build_opts)
    assert again.changed and again.written == 0
    assert "phones" in json.loads((current_generation(build_opts.out) / MANIFEST).read_text())
    assert not run(build_opts).changed
