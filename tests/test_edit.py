"""`polygen phone add/replace/remove` and `polygen ext add/remove` (polygen/edit.py).

The example inventory is copied into a real git repository and every edit is judged by what
`git diff --unified=0` shows: exactly the lines the edit must touch. Refused edits leave every
byte as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen import edit
from polygen.cli import cli
from polygen.errors import InventoryError, PolygenError
from polygen.inventory import Problem, load

from .conftest import EXAMPLE, ROOT, TEMPLATES, make_firmware
from .test_inventory import SITE

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def no_polygen_env(monkeypatch) -> None:
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The example inventory in a git repository (the current directory), committed."""
    no_polygen_env(monkeypatch)
    shutil.copytree(EXAMPLE, tmp_path / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    (tmp_path / ".gitignore").write_text("/inventory/secrets.yaml\n/out\n/.out.gens/\n")
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "example")
    return tmp_path


def polygen(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def changes(cwd: Path) -> list[str]:
    """`git diff --unified=0`, without the file headers: hunk lines and +/- lines."""
    out = []
    for line in git(cwd, "diff", "--unified=0", "--no-color").splitlines():
        if line.startswith(("@@", "+", "-")) and not line.startswith(("+++", "---")):
            out.append(re.sub(r"^(@@ [^@]* @@).*", r"\1", line))
        elif line.startswith("diff --git"):
            out.append(line.split(" b/")[1])
    return out


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


# extensions no phone has yet, for new phones: an extension is on one phone unless it is shared
SPARE = ('extensions:\n  - {ext: "2101", first_name: Spare, secret: s}\n'
         '  - {ext: "2102", first_name: Spare, secret: s}\n  - {ext: "2103", first_name: Spare, secret: s}\n')


def spare_extensions(site: Path) -> None:
    (site / "inventory/spare.yaml").write_text(SPARE)
    git(site, "add", "-A")
    git(site, "commit", "-qm", "spare extensions")


def secret_of(ext: str, path: Path = Path("inventory/secrets.yaml")) -> str:
    m = re.search(rf'^  "{ext}": "([^"]+)"$', path.read_text(), re.M)
    assert m, path.read_text()
    return m.group(1)


# ---------------------------------------------------------------- each edit touches only its lines
def test_phone_add_adds_exactly_the_new_entry(site):
    spare_extensions(site)
    r = polygen("phone", "add", "64:16:7f:00:02:01", "--model", "VVX410", "--line", "2102", "--line", "2101")
    assert (r.exit_code, r.stdout, r.stderr) == (
        0, "inventory/phones.yaml:17: added phone 64167f000201 (VVX410; lines 2102, 2101)\n", "")
    assert changes(site) == [
        "inventory/phones.yaml",
        "@@ -16,0 +17,3 @@",
        "+  - mac: 64:16:7f:00:02:01",
        "+    model: VVX410",
        '+    lines: ["2102", "2101"]',
    ]
    assert polygen("check").stdout == "inventory: 5 phones, 9 extensions: OK\n"


def test_phone_add_refuses_an_extension_another_phone_has(site):
    before = snapshot(site)
    r = polygen("phone", "add", "64:16:7f:00:02:01", "--model", "VVX410", "--line", "1001")
    assert (r.exit_code, r.stderr) == (
        1, "inventory/phones.yaml:19: phones[4].lines[0]: extension '1001' is also a line of phone 0004f2000330 "
           "(inventory/phones.yaml:5); put it on one phone, or set shared: true on the extension "
           "(inventory/extensions.yaml:4) to make it a shared line\n"
           "Error: nothing written: the inventory would have 1 error after this edit\n")
    assert snapshot(site) == before


def test_phone_replace_changes_exactly_one_line(site):
    r = polygen("phone", "replace", "00-04-F2-00-03-31", "00:04:f2:00:03:99")
    assert (r.exit_code, r.stdout) == (0, "inventory/phones.yaml:6: phone 0004f2000331 is now 0004f2000399\n")
    assert changes(site) == [
        "inventory/phones.yaml",
        "@@ -6 +6 @@",
        "-  - mac: 00-04-F2-00-03-31",
        "+  - mac: 00:04:f2:00:03:99",
    ]


def test_phone_replace_keeps_lines_settings_and_comments(site):
    r = polygen("phone", "replace", "64167f000410", "64167f000411")
    assert r.exit_code == 0, r.output
    assert changes(site) == ["inventory/phones.yaml", "@@ -12 +12 @@",
                             "-  - mac: 64:16:7f:00:04:10", "+  - mac: 64167f000411"]
    assert '["1005", "1003", "1004"]   # reception: three lines, in key order' in Path("inventory/phones.yaml").read_text()


def test_phone_remove_removes_exactly_its_entry(site):
    r = polygen("phone", "remove", "0004F2000331")
    assert (r.exit_code, r.stdout) == (0, "inventory/phones.yaml:6: removed phone 0004f2000331\n")
    assert changes(site) == [
        "inventory/phones.yaml",
        "@@ -6,3 +5,0 @@",
        "-  - mac: 00-04-F2-00-03-31",
        "-    model: SPIP_331",
        '-    lines: ["1002"]',
    ]


def test_phone_remove_of_the_last_entry_takes_its_settings(site):
    r = polygen("phone", "remove", "64:16:7f:00:04:10")
    assert r.exit_code == 0, r.output
    assert changes(site) == [
        "inventory/phones.yaml",
        "@@ -12,5 +11,0 @@",
        "-  - mac: 64:16:7f:00:04:10",
        "-    model: VVX410",
        '-    lines: ["1005", "1003", "1004"]   # reception: three lines, in key order',
        "-    settings:",
        '-      up.backlight.idleIntensity: "1"',
    ]


def test_ext_add_writes_the_entry_and_a_private_password(site):
    r = polygen("ext", "add", "2001", "--first-name", "Alan", "--last-name", "Turing")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == ("inventory/extensions.yaml:30: added extension 2001 (Alan Turing); "
                        "its password is in inventory/secrets.yaml\n")
    assert changes(site) == [
        "inventory/extensions.yaml",
        "@@ -29,0 +30,3 @@",
        '+  - ext: "2001"',
        "+    first_name: Alan",
        "+    last_name: Turing",
    ]
    store = Path("inventory/secrets.yaml")
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    secret = secret_of("2001")
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", secret)
    assert secret not in r.output
    assert store.read_text() == (f"{edit.SECRETS_HEADER}\nsecrets:\n"
                                 f'  "2001": "{secret}"\n')
    assert git(site, "status", "--porcelain") == " M inventory/extensions.yaml\n"  # the password stays out of git


def test_each_new_extension_gets_its_own_password(site):
    for ext, name in (("2001", "Alan"), ("2002", "Edsger")):
        assert polygen("ext", "add", ext, "--first-name", name).exit_code == 0
    first, second = secret_of("2001"), secret_of("2002")
    assert first != second
    assert Path("inventory/secrets.yaml").read_text().splitlines()[1:] == [
        "secrets:", f'  "2001": "{first}"', f'  "2002": "{second}"']


def test_ext_add_keeps_quoting_as_text_and_mailbox(site):
    r = polygen("ext", "add", "0100", "--first-name", "Renée", "--last-name", "O'Brien: #1", "--mailbox", "0101")
    assert r.exit_code == 0, r.output
    assert changes(site)[2:] == ['+  - ext: "0100"', "+    first_name: Renée",
                                 "+    last_name: \"O'Brien: #1\"", '+    mailbox: "0101"']
    from polygen.inventory import load

    e = load(Path("inventory")).extensions["0100"]
    assert (e.first_name, e.last_name, e.mailbox) == ("Renée", "O'Brien: #1", "0101")


def test_ext_remove_removes_its_entry_and_its_password(site):
    assert polygen("ext", "add", "2001", "--first-name", "Alan").exit_code == 0
    git(site, "commit", "-qam", "2001")
    r = polygen("ext", "remove", "2001")
    assert (r.exit_code, r.stdout) == (0, "inventory/extensions.yaml:30: removed extension 2001 and its "
                                          "password from inventory/secrets.yaml\n")
    assert changes(site) == ["inventory/extensions.yaml", "@@ -30,2 +29,0 @@",
                             '-  - ext: "2001"', "-    first_name: Alan"]
    # the last password gone, the file still has the shape the loader wants
    assert Path("inventory/secrets.yaml").read_text() == f"{edit.SECRETS_HEADER}\nsecrets: {{}}\n"
    assert polygen("check").exit_code == 0


def test_ext_remove_after_its_phone(site):
    assert polygen("phone", "remove", "00:04:f2:00:03:31").exit_code == 0
    r = polygen("ext", "remove", "1002")
    assert (r.exit_code, r.stdout) == (0, "inventory/extensions.yaml:8: removed extension 1002\n")
    assert changes(site) == [
        "inventory/extensions.yaml", "@@ -8,4 +7,0 @@", '-  - ext: "1002"', "-    first_name: Charles",
        "-    last_name: Babbage", '-    secret: "s3cret-1002"',
        "inventory/phones.yaml", "@@ -6,3 +5,0 @@", "-  - mac: 00-04-F2-00-03-31", "-    model: SPIP_331",
        '-    lines: ["1002"]',
    ]


def test_a_new_extension_and_phone_build(site, tmp_path):
    assert polygen("ext", "add", "2001", "--first-name", "Alan", "--last-name", "Turing").exit_code == 0
    assert polygen("phone", "add", "64:16:7f:00:02:01", "--model", "VVX410", "--line", "2001").exit_code == 0
    make_firmware(tmp_path / "firmware")
    r = polygen("build", "-o", str(tmp_path / "out"), "-t", str(TEMPLATES), "--firmware", str(tmp_path / "firmware"))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("5 phones: ")
    cfg = (tmp_path / "out" / "64167f000201-phone.cfg").read_text().splitlines()  # one attribute a line
    assert '    reg.1.address="2001"' in cfg
    assert f'    reg.1.auth.password="{secret_of("2001")}"' in cfg
    assert '    reg.1.displayName="Alan Turing"' in cfg


# ---------------------------------------------------------------- refusals write nothing
REFUSED = [
    (["phone", "add", "00:04:f2:00:03:30", "--model", "IP330", "--line", "1002"],
     "Error: phone 0004f2000330 is already in the inventory (inventory/phones.yaml:3)\n"),
    (["phone", "add", "0004.F200.0330", "--model", "IP330", "--line", "1002"],
     "Error: phone 0004f2000330 is already in the inventory (inventory/phones.yaml:3)\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "IP330", "--line", "2001"],
     "Error: no extension 2001 in the inventory; add it first: polygen ext add 2001 --first-name NAME\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "IP330", "--line", "1001", "--line", "1001"],
     "Error: extension 1001 is given twice\n"),
    (["phone", "add", "00:04:f2:00:02:0", "--model", "IP330", "--line", "1001"],
     "Error: '00:04:f2:00:02:0' is not a MAC address; write 12 hex digits, e.g. 00:04:f2:12:34:56\n"),
    (["phone", "add", "00:00:00:00:00:00", "--model", "IP330", "--line", "1001"],
     "Error: 000000000000 is reserved for the default files\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--line", "1001"],
     "Error: no model for 0004f2000201: give it with --model, e.g. --model VVX410\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "VVX41", "--line", "2101"],
     "inventory/phones.yaml:18: phones[4].model: unknown model 'VVX41' (did you mean VVX410?); "
     "add it under models: if it is new\n"
     "Error: nothing written: the inventory would have 1 error after this edit\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "IP330", "--line", "2101", "--line", "2102", "--line", "2103"],
     "inventory/phones.yaml:19: phones[4].lines: 3 lines, but the SoundPoint IP 330 supports 2\n"
     "Error: nothing written: the inventory would have 1 error after this edit\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "IP330", "--line", "1001", "--file", "../x.yaml"],
     "Error: --file ../x.yaml: give a .yaml file inside inventory, e.g. --file phones.yaml\n"),
    (["phone", "add", "00:04:f2:00:02:01", "--model", "IP330", "--line", "1001", "--file", "secrets.yaml"],
     "Error: --file secrets.yaml: give a .yaml file inside inventory, e.g. --file phones.yaml\n"),
    (["phone", "replace", "00:04:f2:00:03:30", "00:04:f2:00:03:31"],
     "Error: phone 0004f2000331 is already in the inventory (inventory/phones.yaml:6)\n"),
    (["phone", "replace", "00:04:f2:00:03:30", "0004f2000330"],
     "Error: 00:04:f2:00:03:30 and 0004f2000330 are the same MAC (0004f2000330)\n"),
    (["phone", "replace", "00:04:f2:00:09:99", "00:04:f2:00:09:98"],
     "Error: no phone 0004f2000999 in the inventory\n"),
    (["phone", "remove", "00:04:f2:00:09:99"], "Error: no phone 0004f2000999 in the inventory\n"),
    (["phone", "remove", "not-a-mac"],
     "Error: 'not-a-mac' is not a MAC address; write 12 hex digits, e.g. 00:04:f2:12:34:56\n"),
    (["ext", "add", "1001", "--first-name", "Ada"],
     "Error: extension 1001 is already in the inventory (inventory/extensions.yaml:4)\n"),
    (["ext", "add", "10 01", "--first-name", "Ada"],
     "Error: '10 01' is not a valid extension (letters, digits, '.', '+', '-'; at most 64)\n"),
    (["ext", "add", "2001", "--first-name", "Ada\nLovelace"],
     "Error: the first name contains line breaks or control characters\n"),
    (["ext", "add", "2001", "--first-name", "Mail", "--mailbox", "1000"],
     "inventory/extensions.yaml:32: extensions[6].mailbox: directory contact '1000' is also used by extension "
     "'1005' (inventory/extensions.yaml:20); the phone directory needs unique contacts: set another mailbox "
     "or directory: false\n"
     "Error: nothing written: the inventory would have 1 error after this edit\n"),
    (["ext", "add", "2001", "--first-name", "A name longer than forty bytes in UTF-8 ..."],
     "inventory/extensions.yaml:31: extensions[6].first_name: 43 bytes in UTF-8, but at most 40 fit in the "
     "phone directory; shorten it\n"
     "Error: nothing written: the inventory would have 1 error after this edit\n"),
    (["ext", "remove", "1001"],
     "Error: extension 1001 is on phone 0004f2000330 (inventory/phones.yaml:5); remove it from the phone first\n"),
    (["ext", "remove", "2001"], "Error: no extension 2001 in the inventory\n"),
]


@pytest.mark.parametrize("args, message", REFUSED, ids=[" ".join(a[:3]) for a, _ in REFUSED])
def test_refused_edits_write_nothing(site, args, message):
    spare_extensions(site)
    before = snapshot(site)
    r = polygen(*args)
    assert (r.exit_code, r.stdout, r.stderr) == (1, "", message)
    assert snapshot(site) == before


def test_an_extension_on_several_phones_names_each(site):
    ext = Path("inventory/extensions.yaml")
    ext.write_text(ext.read_text().replace('    secret: "s3cret-1001"\n', '    secret: "s3cret-1001"\n    shared: true\n'))
    assert polygen("phone", "add", "64:16:7f:00:02:01", "--model", "VVX410", "--line", "1001").exit_code == 0
    before = snapshot(site)
    r = polygen("ext", "remove", "1001")
    assert (r.exit_code, r.stderr) == (1, "Error: extension 1001 is on phones 0004f2000330 (inventory/phones.yaml:5), "
                                          "64167f000201 (inventory/phones.yaml:19); remove it from the phones first\n")
    assert snapshot(site) == before


def test_an_inventory_that_already_fails_refuses_every_edit(site):
    ext = Path("inventory/extensions.yaml")
    ext.write_text(ext.read_text().replace('    secret: "s3cret-1003"\n', ""))
    before = snapshot(site)
    r = polygen("phone", "remove", "00:04:f2:00:03:30")
    assert r.exit_code == 1
    assert r.stderr == ("inventory/extensions.yaml:12: extensions[2].secret: missing secret for extension '1003': "
                        "set it here, in the secrets file (secrets: {\"1003\": …}) or in $POLYGEN_SECRET_1003\n"
                        "Error: nothing written: the inventory would have 1 error after this edit\n")
    assert snapshot(site) == before


def test_a_file_that_is_not_yaml_is_named(site):
    Path("inventory/more.yaml").write_text("phones: [\n")
    r = polygen("phone", "remove", "00:04:f2:00:03:30")
    assert (r.exit_code, r.stderr) == (1, "Error: inventory/more.yaml:2: not valid YAML (did not find expected "
                                          "node content); fix it first (polygen check)\n")


def test_a_warning_on_the_new_entry_is_shown(site):
    spare_extensions(site)
    r = polygen("phone", "add", "00:11:22:00:02:01", "--model", "VVX410", "--line", "2101")
    assert r.exit_code == 0
    assert r.stderr == "inventory/phones.yaml:17: phones[4].mac: warning: 00:11:22 is not a Polycom/Poly OUI; check the MAC\n"


def test_a_file_changed_during_the_edit_is_not_overwritten(site):
    """The edit reads, checks, then writes: a change made in between (here by the model lookup,
    which runs between the two) is kept and the edit refused."""
    spare_extensions(site)
    phones = Path("inventory/phones.yaml")

    def meanwhile(mac):
        phones.write_text(phones.read_text() + "# edited by someone else\n")
        return "VVX_410"

    with pytest.raises(PolygenError, match=r"^inventory/phones.yaml changed while it was being edited; "
                                           "nothing written, run the command again$"):
        edit.add_phone(Path("inventory"), "64:16:7f:00:02:01", ["2101"], lookup_reported_model=meanwhile)
    assert phones.read_text().endswith('      up.backlight.idleIntensity: "1"\n# edited by someone else\n')


# ---------------------------------------------------------------- the library
def test_the_model_reported_by_the_phone_is_the_default(site):
    spare_extensions(site)
    seen = []

    def reported(mac):
        seen.append(mac)
        return "VVX_410"

    r = edit.add_phone(Path("inventory"), "64-16-7F-00-02-01", ["2101"], lookup_reported_model=reported)
    assert seen == ["64167f000201"]
    assert r.summary == "inventory/phones.yaml:17: added phone 64167f000201 (VVX410; line 2101)"
    assert r.files == (Path("inventory/phones.yaml"),)
    assert [p.mac for p in r.inventory.phones if p.model == "VVX410"] == ["64167f000201", "64167f000410"]
    assert changes(site)[2] == "+  - mac: 64-16-7F-00-02-01"
    # a model given wins; a phone that reported nothing needs one
    r = edit.add_phone(Path("inventory"), "64:16:7f:00:02:02", ["2102"], "IP331", lookup_reported_model=reported)
    assert seen == ["64167f000201"] and "(IP331; line 2102)" in r.summary
    with pytest.raises(PolygenError, match="^no model for 64167f000203: give it with --model"):
        edit.add_phone(Path("inventory"), "64:16:7f:00:02:03", ["2103"], lookup_reported_model=lambda mac: None)


def test_mode_and_owner_are_kept_and_no_temporary_file_is_left(site):
    phones = Path("inventory/phones.yaml")
    phones.chmod(0o640)
    assert polygen("phone", "remove", "00:04:f2:00:03:30").exit_code == 0
    assert stat.S_IMODE(phones.stat().st_mode) == 0o640
    assert sorted(p.name for p in Path("inventory").iterdir()) == ["extensions.yaml", "phones.yaml", "site.yaml"]


def test_secrets_file_from_the_environment(site, tmp_path, monkeypatch):
    store = tmp_path / "private" / "sip.yaml"
    store.parent.mkdir()
    monkeypatch.setenv("POLYGEN_SECRETS", str(store))
    r = polygen("ext", "add", "2001", "--first-name", "Alan")
    assert r.stdout == f"inventory/extensions.yaml:30: added extension 2001 (Alan); its password is in {store}\n"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert not Path("inventory/secrets.yaml").exists()
    assert secret_of("2001", store) not in r.output
    # a secrets file given but missing fails the check like `polygen check` does
    monkeypatch.setenv("POLYGEN_SECRETS", str(tmp_path / "missing.yaml"))
    r = polygen("phone", "remove", "00:04:f2:00:03:30")
    missing = tmp_path / "missing.yaml"
    assert (r.exit_code, r.stderr.splitlines()[-2:]) == (1, [
        f"{missing}: secrets file '{missing}' does not exist",
        "Error: nothing written: the inventory would have 2 errors after this edit"])


def test_secrets_file_keeps_its_comments_and_other_keys(site):
    store = Path("inventory/secrets.yaml")
    store.write_text("# ours\nprovisioning_password: \"pw\"   # the phones' one\n")
    store.chmod(0o640)
    assert polygen("ext", "add", "2001", "--first-name", "Alan").exit_code == 0
    secret = secret_of("2001")
    assert store.read_text() == f'# ours\nprovisioning_password: "pw"   # the phones\' one\n\nsecrets:\n  "2001": "{secret}"\n'
    assert stat.S_IMODE(store.stat().st_mode) == 0o640
    assert polygen("ext", "add", "2002", "--first-name", "Edsger").exit_code == 0
    assert store.read_text().endswith(f'secrets:\n  "2001": "{secret}"\n  "2002": "{secret_of("2002")}"\n')


def test_a_left_over_password_is_replaced(site):
    store = Path("inventory/secrets.yaml")
    store.write_text("secrets:\n  '2001': old   # from before\n  '1001': other\n")
    store.chmod(0o600)
    r = polygen("ext", "add", "2001", "--first-name", "Alan")
    assert r.exit_code == 0, r.output
    text = store.read_text()
    new = re.search(r"'2001': \"([^\"]+)\"", text).group(1)
    assert new != "old" and text == f"secrets:\n  '2001': \"{new}\"   # from before\n  '1001': other\n"


# ---------------------------------------------------------------- other styles of inventory
@pytest.fixture
def inv(tmp_path, monkeypatch):
    """An inventory 'inv' in the current directory with a site; returns a function to write files."""
    no_polygen_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    Path("inv").mkdir()
    Path("inv/site.yaml").write_text(SITE)

    def write(name: str, text: str) -> Path:
        p = Path("inv", name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode())
        return p

    return write


def ok(*args: str) -> str:
    r = polygen(*args[:2], *args[2:], "-i", "inv")
    assert r.exit_code == 0, r.output
    return r.stdout


def test_flow_style_entries_get_a_flow_style_sibling(inv):
    exts = inv("e.yaml", 'extensions:\n  - {ext: "1001", first_name: Ada, secret: s3cret}\n')
    phones = inv("p.yaml", "phones:\n- {mac: 00:04:f2:00:03:30, model: IP330, lines: ['1001']}  # desk\n")
    ok("ext", "add", "1002", "--first-name", "Charles")
    ok("phone", "add", "0004f2000331", "--model", "IP331", "--line", "1002")
    assert exts.read_text() == ('extensions:\n  - {ext: "1001", first_name: Ada, secret: s3cret}\n'
                                '  - {ext: "1002", first_name: Charles}\n')
    assert phones.read_text() == ("phones:\n- {mac: 00:04:f2:00:03:30, model: IP330, lines: ['1001']}  # desk\n"
                                  "- {mac: 0004f2000331, model: IP331, lines: ['1002']}\n")
    ok("phone", "remove", "00:04:f2:00:03:30")
    assert phones.read_text() == "phones:\n- {mac: 0004f2000331, model: IP331, lines: ['1002']}\n"


BLANKS = """\
phones:

    # the front desk
    -   mac: '0004f2000330'
        model: IP330
        lines:
          - '1001'
        # settings: {}

    -   mac: '0004f2000331'
        model: IP331
        lines:
          - '1002'
"""


def test_block_lists_blank_lines_and_comments(inv):
    inv("e.yaml", "extensions:\n" + "".join(f'  - {{ext: "{e}", first_name: X{e}, secret: s}}\n'
                                            for e in ("1001", "1002", "1003", "1004")))
    phones = inv("p.yaml", BLANKS)
    ok("phone", "add", "00:04:f2:00:03:32", "--model", "IP330", "--line", "1003", "--line", "1004")
    assert phones.read_text() == BLANKS + (
        "\n"
        "    -   mac: '00:04:f2:00:03:32'\n"
        "        model: IP330\n"
        "        lines:\n"
        "          - '1003'\n"
        "          - '1004'\n")
    ok("phone", "remove", "0004f2000330")  # with its comment above and its commented-out settings
    assert phones.read_text() == BLANKS.replace(
        "    # the front desk\n    -   mac: '0004f2000330'\n        model: IP330\n        lines:\n"
        "          - '1001'\n        # settings: {}\n\n", "") + (
        "\n    -   mac: '00:04:f2:00:03:32'\n        model: IP330\n        lines:\n          - '1003'\n"
        "          - '1004'\n")
    ok("phone", "remove", "00:04:f2:00:03:32")  # the last one: the blank line before it goes too
    assert phones.read_text() == "phones:\n\n    -   mac: '0004f2000331'\n        model: IP331\n" \
                                 "        lines:\n          - '1002'\n"
    ok("phone", "replace", "0004f2000331", "0004f2000399")
    assert phones.read_text().splitlines()[2] == "    -   mac: '0004f2000399'"


@pytest.mark.parametrize("written", ["phones:\n", "phones: []\n", "phones: ~   # none yet\n"])
def test_an_empty_phones_list(inv, written):
    inv("e.yaml", 'extensions:\n  - {ext: "1001", first_name: Ada, secret: s}\n')
    phones = inv("p.yaml", "# phones\n" + written)
    ok("phone", "add", "0004f2000330", "--model", "IP330", "--line", "1001")
    head = "phones:   # none yet\n" if "#" in written else "phones:\n"
    assert phones.read_text() == f'# phones\n{head}  - mac: 0004f2000330\n    model: IP330\n    lines: ["1001"]\n'


def test_the_target_file_holds_the_most_phones_or_is_named(inv):
    inv("e.yaml", 'extensions:\n  - {ext: "1001", first_name: Ada, secret: s, shared: true}\n')
    inv("a.yaml", "phones:\n  - {mac: 0004f2000001, model: IP330, lines: []}\n")
    inv("b/c.yaml", "phones:\n  - {mac: 0004f2000002, model: IP330, lines: []}\n"
                    "  - {mac: 0004f2000003, model: IP330, lines: []}\n")
    assert ok("phone", "add", "0004f2000004", "--model", "IP330", "--line", "1001") == \
        "inv/b/c.yaml:4: added phone 0004f2000004 (IP330; line 1001)\n"
    assert ok("phone", "add", "0004f2000005", "--model", "IP330", "--line", "1001", "--file", "a.yaml") == \
        "inv/a.yaml:3: added phone 0004f2000005 (IP330; line 1001)\n"
    # a new file, made in the style of nothing: the defaults
    assert ok("phone", "add", "0004f2000006", "--model", "IP330", "--line", "1001", "--file", "floor2/new.yml") == \
        "inv/floor2/new.yml:2: added phone 0004f2000006 (IP330; line 1001)\n"
    new = Path("inv/floor2/new.yml")
    assert new.read_text() == 'phones:\n  - mac: 0004f2000006\n    model: IP330\n    lines: ["1001"]\n'
    # entries are removed where they are
    assert ok("phone", "remove", "0004f2000002") == "inv/b/c.yaml:2: removed phone 0004f2000002\n"


def test_no_phones_anywhere_go_to_phones_yaml(inv):
    inv("e.yaml", 'extensions:\n  - {ext: "1001", first_name: Ada, secret: s}\n')
    assert ok("phone", "add", "0004f2000330", "--model", "IP330", "--line", "1001") == \
        "inv/phones.yaml:2: added phone 0004f2000330 (IP330; line 1001)\n"
    # and a file without the list gets it at its end
    assert ok("ext", "add", "1002", "--first-name", "Charles", "--file", "site.yaml") == \
        "inv/site.yaml:8: added extension 1002 (Charles); its password is in inv/secrets.yaml\n"
    assert Path("inv/site.yaml").read_text() == SITE + '\nextensions:\n  - ext: "1002"\n    first_name: Charles\n'


def test_crlf_files_stay_crlf(inv):
    exts = inv("e.yaml", 'extensions:\r\n  - ext: "1001"\r\n    first_name: Ada\r\n    secret: s\r\n')
    ok("ext", "add", "1002", "--first-name", "Charles")
    assert exts.read_bytes() == (b'extensions:\r\n  - ext: "1001"\r\n    first_name: Ada\r\n    secret: s\r\n'
                                 b'  - ext: "1002"\r\n    first_name: Charles\r\n')


def test_a_file_without_a_final_line_break(inv):
    exts = inv("e.yaml", 'extensions:\n  - ext: "1001"\n    first_name: Ada\n    secret: s')
    ok("ext", "add", "1002", "--first-name", "Charles")
    assert exts.read_text() == ('extensions:\n  - ext: "1001"\n    first_name: Ada\n    secret: s\n'
                                '  - ext: "1002"\n    first_name: Charles\n')


# ---------------------------------------------------------------- many entries at once
ODD = """\
# top
phones:   # the phones
    -   mac: '0004f2000330'   # one
        model: IP330
        lines: ['1001']
# end
extensions:
- {ext: "1001", first_name: Ada, secret: s}   # flow items
"""


def test_add_entries_plans_every_splice_and_checks_once(inv, monkeypatch):
    f = inv("all.yaml", ODD)
    loads = []

    def counted(*args, **kw):
        loads.append(args)
        return load(*args, **kw)

    monkeypatch.setattr(edit, "load", counted)
    added = edit.add_entries(
        Path("inv"), extensions=[{"ext": "2001", "first_name": "Zed"}, {"ext": "2002", "first_name": "yes"}],
        phones=[{"mac": "0004f2000331", "model": "IP330", "lines": ["2001"]},
                {"mac": "0004f2000332", "model": "IP330", "lines": ["2002"]}],
        passwords={"2001": "pw-1", "2002": "pw-2"})
    assert len(loads) == 1
    assert f.read_text() == ODD.replace("# end\n", "    -   mac: '0004f2000331'\n        model: IP330\n"
                                                 "        lines: ['2001']\n    -   mac: '0004f2000332'\n"
                                                 "        model: IP330\n        lines: ['2002']\n# end\n") + (
        '- {ext: "2001", first_name: Zed}\n- {ext: "2002", first_name: "yes"}\n')
    # the extensions were placed first, then the phones above them moved them down
    lines = f.read_text().splitlines()
    assert [(p.section, p.index, p.first, p.last) for p in added.placed] == [
        ("extensions", 1, 15, 15), ("extensions", 2, 16, 16), ("phones", 1, 6, 8), ("phones", 2, 9, 11)]
    assert [lines[p.first - 1].split()[1:3] for p in added.placed] == [
        ["{ext:", '"2001",'], ["{ext:", '"2002",'], ["mac:", "'0004f2000331'"], ["mac:", "'0004f2000332'"]]
    assert added.files == (Path("inv/secrets.yaml"), Path("inv/all.yaml"))
    assert Path("inv/secrets.yaml").read_text() == f'{edit.SECRETS_HEADER}\nsecrets:\n  "2001": "pw-1"\n  "2002": "pw-2"\n'
    assert stat.S_IMODE(Path("inv/secrets.yaml").stat().st_mode) == 0o600
    assert {p.mac for p in added.inventory.phones} == {"0004f2000330", "0004f2000331", "0004f2000332"}


def test_add_entries_tells_problems_where_the_caller_wants(inv):
    inv("e.yaml", 'extensions:\n  - {ext: "1001", first_name: Ada, secret: s, mailbox: "1000"}\n')
    inv("p.yaml", "phones: []\n")
    before = snapshot(Path("inv"))
    seen = []

    def blame(p, section, i, rest):
        seen.append((section, i, rest))
        return Problem("rows.csv", 10 + i, rest, p.message, p.severity)

    with pytest.raises(InventoryError) as exc:
        edit.add_entries(Path("inv"), extensions=[{"ext": "2001", "first_name": "Zed", "mailbox": "1000"}],
                         phones=[{"mac": "0004f2000330", "model": "IP330", "lines": ["2001", "1001", "2002"]}],
                         passwords={"2001": "pw"}, blame=blame)
    assert str(exc.value) == "nothing written: the inventory would have 3 errors after this edit"
    assert [str(p) for p in exc.value.problems] == [
        "rows.csv:10: .mailbox: directory contact '1000' is also used by extension '1001' (inv/e.yaml:2); the "
        "phone directory needs unique contacts: set another mailbox or directory: false",
        "rows.csv:10: .lines[2]: no extension '2002' in the inventory (did you mean '2001'?)",
        "rows.csv:10: .lines: 3 lines, but the SoundPoint IP 330 supports 2",
    ]
    assert seen == [("extensions", 0, ".mailbox"), ("phones", 0, ".lines[2]"), ("phones", 0, ".lines")]
    assert snapshot(Path("inv")) == before
    # a dry run checks and writes nothing; a new file that exists is refused
    added = edit.add_entries(Path("inv"), extensions=[{"ext": "2001", "first_name": "Zed"}],
                             passwords={"2001": "pw"}, dry_run=True)
    assert (added.files, [p.first for p in added.placed]) == ((), [3])
    assert snapshot(Path("inv")) == before
    with pytest.raises(PolygenError, match=r"^inv/site.yaml already exists; nothing written$"):
        edit.add_entries(Path("inv"), new_files={Path("inv/site.yaml"): "site: {}\n"})


# ---------------------------------------------------------------- help and README
@pytest.mark.parametrize("command", [["phone"], ["phone", "add"], ["phone", "replace"], ["phone", "remove"],
                                     ["ext"], ["ext", "add"], ["ext", "remove"]])
def test_help_has_an_example(command):
    r = polygen(*command, "--help")
    assert r.exit_code == 0 and "\nExample:\n  polygen " in r.stdout.replace("\n  Example:\n    polygen ",
                                                                             "\nExample:\n  polygen ")


def test_readme_session(site):
    """The README's "Editing the inventory from the command line" session, replayed."""
    from .test_readme_sessions import session

    lines = session("polygen ext add 2001 --first-name Alan --last-name Turing")
    i = 0
    while i < len(lines):
        cmd = lines[i]
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("$ ")), len(lines))
        argv = cmd[2:].split()
        if argv[0] == "git":
            got = git(site, *argv[1:]).splitlines()
        else:
            assert argv[0] == "polygen", cmd
            got = polygen(*argv[1:]).output.splitlines()
        assert got == lines[i + 1:j], f"{cmd}\n" + "\n".join(got)
        i = j
    assert (ROOT / "README.md").read_text().count("## Editing the inventory from the command line") == 1
