"""The example inventory's build, byte for byte (regenerate deliberately with `make golden`), and
the shape of its files: one attribute a line, so that a review diff shows the value that changed."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from polygen.build import BuildOptions, run
from polygen.cli import cli
from polygen.simulate import TreeTransport, boot
from polygen.write import BUILD_RECORD, MANIFEST

from .conftest import EXAMPLE, TEMPLATES

GOLDEN = Path(__file__).parent / "golden" / "out"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in (MANIFEST, BUILD_RECORD)}


def test_example_build_matches_golden(tmp_path):
    (tmp_path / "firmware").mkdir()  # as shipped: no firmware unpacked yet
    out = tmp_path / "out"
    run(BuildOptions(EXAMPLE, out, TEMPLATES, tmp_path / "firmware"))
    got = _files(out)
    if os.environ.get("POLYGEN_REGEN_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, data in got.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    want = _files(GOLDEN)
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{rel} differs from tests/golden/out/{rel}; run `make golden` if intended"


# ------------------------------------------------------------------ one attribute a line
# The templates as they were before one attribute a line: each element on one line, no shared
# _params.j2 (a custom template directory copied then still looks like this and must still work).
_ONE_LINE_SECTIONS = """\
{%- for section, params in sections %}
  <{{ section }}{% for name, value in params %} {{ name }}="{{ value|xa }}"{% endfor %}/>
{%- endfor %}"""
_ONE_LINE_BOOTSTRAP = """\
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!-- polygen master configuration ({{ label }}): generated from the inventory; do not edit. -->
<!-- CONFIG_FILES: the phone's own file first, then the site file; the first value found wins. -->
<APPLICATION APP_FILE_PATH="{{ base.app_file_path|xa }}" CONFIG_FILES="{{ base.config_files|xa }}" \
MISC_FILES="" LOG_FILE_DIRECTORY="{{ dirs.log|xa }}" OVERRIDES_DIRECTORY="{{ dirs.overrides|xa }}" \
CONTACTS_DIRECTORY="{{ dirs.contacts|xa }}" LICENSE_DIRECTORY="" USER_PROFILES_DIRECTORY="" \
CALL_LISTS_DIRECTORY="{{ dirs.calls|xa }}">
{%- for m in models %}
  <APPLICATION_{{ m.token }} APP_FILE_PATH_{{ m.token }}="{{ m.app_file_path|xa }}" \
CONFIG_FILES_{{ m.token }}="{{ m.config_files|xa }}"/>
{%- endfor %}
</APPLICATION>
"""
ONE_LINE_UA = {"0004f2000330": "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.5.0247",
               "0004f2000331": "FileTransport PolycomSoundPointIP-SPIP_331-UA/4.0.15.1009",
               "0004f2005000": "FileTransport PolycomSoundStationIP-SSIP_5000-UA/4.0.3.7562",
               "64167f000410": "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477",
               "0004f2004000": "FileTransport PolycomSoundStationIP-SSIP_4000-UA/3.1.8.0070"}


def one_line_templates(dest: Path) -> Path:
    shutil.copytree(TEMPLATES, dest, ignore=shutil.ignore_patterns("_params.j2"))
    for name in ("phone.cfg.j2", "site.cfg.j2"):
        text = (dest / name).read_text()
        text = text.replace('{%- from "_params.j2" import elements -%}\n', "")
        assert "{{- elements(sections) }}" in text, name
        (dest / name).write_text(text.replace("{{- elements(sections) }}", _ONE_LINE_SECTIONS))
    (dest / "bootstrap.cfg.j2").write_text(_ONE_LINE_BOOTSTRAP)
    return dest


def _elements(data: bytes) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(el.tag, list(el.attrib.items())) for el in ET.fromstring(data).iter()]


def test_one_attribute_a_line_means_the_same_xml(inventory_dir, firmware_dir, tmp_path):
    """Every generated config, both dialects, parses to the same elements with the same attributes
    in the same order as the one-line form, and a phone booting from either tree ends with the
    same parameters from the same files."""
    (inventory_dir / "legacy.yaml").write_text(  # a SIP 3.1 phone: site-sip3.cfg and <phone1>
        'extensions:\n  - {ext: "3000", first_name: Extra, secret: s3cret-3000}\n'
        'phones:\n  - {mac: 0004f2004000, model: IP4000, lines: ["3000"]}\n')
    new, old = tmp_path / "new", tmp_path / "old"
    run(BuildOptions(inventory_dir, new, TEMPLATES, firmware_dir))
    run(BuildOptions(inventory_dir, old, one_line_templates(tmp_path / "one-line"), firmware_dir))
    configs = sorted(p.relative_to(new).as_posix() for p in new.rglob("*.cfg") if "firmware" not in p.parts)
    assert configs == sorted(p.relative_to(old).as_posix() for p in old.rglob("*.cfg") if "firmware" not in p.parts)
    assert {"site-sip3.cfg", "0004f2004000-phone.cfg", "bootstrap/SSIP4000.cfg"} <= set(configs)
    for rel in configs:
        got, want = (new / rel).read_bytes(), (old / rel).read_bytes()
        assert got != want, rel
        assert _elements(got) == _elements(want), rel
        for line in got.decode().splitlines():  # the XML declaration and the root's namespaces aside
            assert line.count('="') <= 1 or line.startswith(("<?xml ", "<polycomConfig ")), (rel, line)
    for mac, ua in ONE_LINE_UA.items():
        a, b = boot(TreeTransport(new), mac, ua), boot(TreeTransport(old), mac, ua)
        assert a.ok and a.params and (a.master, a.params, a.sources) == (b.master, b.params, b.sources), mac


def _changed_lines(diff_text: str) -> dict[str, list[str]]:
    """The '-' and '+' lines of a unified diff, per file."""
    files: dict[str, list[str]] = {}
    for line in diff_text.splitlines():
        if line.startswith("+++ "):
            current = files.setdefault(line[6:], [])
        elif line[:1] in "-+" and not line.startswith("--- "):
            current.append(line)
    return files


def test_a_display_name_change_is_a_one_line_diff(inventory_dir, firmware_dir, tmp_path):
    args = ["-i", str(inventory_dir), "-o", str(tmp_path / "out"), "-t", str(TEMPLATES),
            "--firmware", str(firmware_dir)]
    assert CliRunner().invoke(cli, ["build", *args]).exit_code == 0
    ext = inventory_dir / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Ada", "first_name: Augusta"))
    r = CliRunner().invoke(cli, ["diff", *args], catch_exceptions=False)
    assert (r.exit_code, r.stderr) == (0, "0 to add, 2 to change, 0 to remove (against generation g000001)\n")
    assert _changed_lines(r.stdout) == {
        "0004f2000330-phone.cfg": ['-    reg.1.displayName="Ada Lovelace"',
                                   '+    reg.1.displayName="Augusta Lovelace"'],
        "contacts/000000000000-directory.xml": ["-    <item><fn>Ada</fn><ln>Lovelace</ln><ct>1001</ct></item>",
                                                "+    <item><fn>Augusta</fn><ln>Lovelace</ln><ct>1001</ct></item>"],
    }
