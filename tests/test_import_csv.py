"""polygen import csv / export csv: column spellings, every bad row at once, passwords only in the
secrets file, adding to an inventory while keeping its comments, and the way back."""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.errors import InventoryError, PolygenError
from polygen.importing.csvin import import_csv, parse_map
from polygen.inventory import load

from .conftest import EXAMPLE
from .test_edit import changes, git

SITE = {"name": "Example Corp", "provisioning_url": "http://prov.example.com/", "sip_server": "pbx.example.com",
        "timezone": "America/New_York"}
CSV = """\
MAC Address,Model,Extension,Name,Password,Dept
00:04:f2:00:03:30,IP330,1001,Ada Lovelace,s3cret-1001,R&D
64:16:7f:00:04:10,VVX 410,1005,Front Desk,s3cret-1005,
64-16-7F-00-04-10,VVX410,1003,Grace Brewster Hopper,"p,w""1003",
,,1099,Conference,s3cret-1099,
"""


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_text(textwrap.dedent(text), encoding=encoding)
    return path


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(fn, *args, **kw) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        fn(*args, **kw)
    return [str(p) for p in exc.value.problems]


def test_a_new_site_from_a_spreadsheet(here):
    write(here / "phones.csv", CSV)
    draft, written = import_csv(Path("phones.csv"), Path("site1"), site=SITE, env={})
    assert [(str(p), what) for p, what in written.files] == [
        ("site1/site.yaml", "the site"), ("site1/extensions.yaml", "4 extensions"),
        ("site1/phones.yaml", "2 phones"), ("site1/secrets.yaml", "4 passwords (mode 0600)")]
    assert (here / "site1/phones.yaml").read_text() == textwrap.dedent("""\
        # Imported from phones.csv by polygen import csv.
        phones:
          - mac: "00:04:f2:00:03:30"
            model: IP330
            lines: ["1001"]
          - mac: "64:16:7f:00:04:10"
            model: VVX410
            lines: ["1005", "1003"]
        """)
    assert (here / "site1/extensions.yaml").read_text() == textwrap.dedent("""\
        # Imported from phones.csv by polygen import csv.
        extensions:
          - ext: "1001"
            first_name: Ada
            last_name: Lovelace
          - ext: "1005"
            first_name: Front
            last_name: Desk
          - ext: "1003"
            first_name: Grace Brewster
            last_name: Hopper
          - ext: "1099"
            first_name: Conference
        """)
    inv = load(Path("site1"), env={})
    assert inv.extensions["1003"].secret == 'p,w"1003'
    assert [w.message for w in written.warnings][0].startswith("column not imported; to import it, map it with "
                                                                "--map 'Dept=FIELD'")
    secrets = here / "site1/secrets.yaml"
    assert secrets.stat().st_mode & 0o777 == 0o600
    for f in ("site.yaml", "extensions.yaml", "phones.yaml"):
        assert "s3cret" not in (here / "site1" / f).read_text()
    assert (here / "site1/.gitignore").read_text() == "# SIP passwords: never in git\n/secrets.yaml\n"


def test_tsv_semicolons_and_a_byte_order_mark_are_read(here):
    write(here / "a.tsv", "ext\tfirst_name\tlast_name\tsecret\n2001\tZoë\tÅ\tx\n", encoding="utf-8-sig")
    write(here / "b.csv", "Extension;First Name;Password;MAC;model\n2002;Bob;y;0004f2000999;IP330\n")
    for name, into in (("a.tsv", "a"), ("b.csv", "b")):
        import_csv(Path(name), Path(into), site=SITE, env={})
    assert load(Path("a"), env={}).extensions["2001"].last_name == "Å"
    assert load(Path("b"), env={}).phones[0].lines == ("2002",)


def test_map_names_other_columns(here):
    write(here / "x.csv", "Station,Phone Number,Who,Pin,Notes\n0004f2000330,1001,Ada King,1234,x\n")
    mapping = parse_map(["station=mac", "Phone Number=ext", "Who=name", "Pin=secret", "NOTES=ignore"])
    with pytest.raises(InventoryError) as exc:
        import_csv(Path("x.csv"), Path("inv"), site=SITE, mapping=mapping, env={})
    # the row has no model: named by the mapped column
    assert [str(p) for p in exc.value.problems] == [
        "x.csv:2: no model for this phone; every phone needs one (a model column, e.g. VVX410)"]
    write(here / "x.csv", "Station,Phone Number,Who,Pin,Notes,Type\n0004f2000330,1001,Ada King,1234,x,IP 330\n")
    import_csv(Path("x.csv"), Path("inv"), site=SITE, mapping={**mapping, "type": "model"}, env={})
    inv = load(Path("inv"), env={})
    assert (inv.phones[0].model, inv.extensions["1001"].first_name, inv.extensions["1001"].secret) == (
        "IP330", "Ada", "1234")
    with pytest.raises(PolygenError, match="unknown field 'extension'; fields: mac, model, ext"):
        parse_map(["Phone=extension"])
    with pytest.raises(PolygenError, match="write it as COLUMN=FIELD"):
        parse_map(["Phone"])


def test_every_bad_row_is_reported_with_its_line_and_column_and_nothing_is_written(here):
    write(here / "bad.csv", """\
        MAC Address,Model,Extension,First Name,Last Name,Password,Directory
        00:04:f2:zz,IP330,1001,Ada,,x,
        00:04:f2:00:03:31,VVX41,1002,Charles,,y,
        00:04:f2:00:03:32,,10 01,,,,
        00:04:f2:00:03:33,IP330,1003,"Grace
        Brewster",Hopper,z,maybe
        00:04:f2:00:03:33,IP4000,1004,Renée,Renéééééééééééééééééééééééééééééééééééééé,w,
        00:04:f2:00:03:33,IP330,1005,Bob,,v,
        ,,1001,Augusta,,x,
        ,,1006,,,u,
        00:04:f2:00:03:30,IP330,1001,,,,
        00:04:f2:00:03:30,IP330,1001,,,,
        """)
    assert problems(import_csv, Path("bad.csv"), Path("inv"), site=SITE, env={}) == [
        "bad.csv:2: MAC Address: '00:04:f2:zz' is not a MAC address; write 12 hex digits, e.g. 00:04:f2:12:34:56",
        "bad.csv:3: Model: unknown model 'VVX41' (did you mean VVX410?); use a catalog name such as VVX410, or add "
        "it under models: first",
        "bad.csv:4: Model: no model for this phone; every phone needs one (a model column, e.g. VVX410)",
        "bad.csv:4: Extension: '10 01' is not a valid extension (letters, digits, '.', '+', '-'; at most 64)",
        "bad.csv:5: First Name: contains control characters the phones cannot show",
        "bad.csv:5: Directory: 'maybe': write yes or no",
        "bad.csv:7: Last Name: 79 bytes in UTF-8, but at most 40 fit in the phone directory; shorten it",
        "bad.csv:7: Model: phone 0004f2000333 is a IP330 on line 5",
        "bad.csv:8: Extension: line 3 of phone 0004f2000333, but the SoundPoint IP 330 supports 2",
        "bad.csv:9: First Name: extension 1001 has first_name 'Ada' on line 2; rows of the same extension must agree",
        "bad.csv:10: First Name: no name for extension 1006; every extension needs a first name",
        "bad.csv:12: Extension: extension 1001 is on phone 0004f2000330 twice (line 11)",
    ]
    assert not (here / "inv").exists()


def test_problems_the_inventory_check_finds_are_told_at_their_row(here):
    write(here / "p.csv", """\
        mac,model,ext,first_name,secret,mailbox
        0004f2000330,IP330,1001,Ada,,
        0004f2000331,IP330,1002,Bob,b,1001
        """)
    assert problems(import_csv, Path("p.csv"), Path("inv"), site=SITE, env={}) == [
        "p.csv:2: secret: missing secret for extension '1001': set it here, in the secrets file "
        "(secrets: {\"1001\": …}) or in $POLYGEN_SECRET_1001",
        "p.csv:3: mailbox: directory contact '1001' is also used by extension '1001' (inv/extensions.yaml:3); the "
        "phone directory needs unique contacts: set another mailbox or directory: false",
    ]
    assert not (here / "inv").exists()
    # the environment's passwords count, as they do for a build
    write(here / "p.csv", "mac,model,ext,first_name\n0004f2000330,IP330,1001,Ada\n")
    import_csv(Path("p.csv"), Path("inv"), site=SITE, env={"POLYGEN_SECRET_1001": "from-env"})
    assert not (here / "inv/secrets.yaml").exists()


def test_an_inventory_with_phones_is_not_overwritten_without_merge(here):
    shutil.copytree(EXAMPLE, here / "inventory")
    write(here / "p.csv", "mac,model,ext,first_name,secret\n0004f2000999,IP330,2001,Zed,z\n")
    before = {p.name: p.read_bytes() for p in (here / "inventory").iterdir()}
    with pytest.raises(PolygenError) as exc:
        import_csv(Path("p.csv"), Path("inventory"), env={})
    assert str(exc.value) == ("inventory already has phones or extensions (inventory/extensions.yaml:4): add these "
                              "to it with --merge, or import --into a new directory")
    with pytest.raises(PolygenError, match="^newsite has no site: give --site-name, --provisioning-url, "):
        import_csv(Path("p.csv"), Path("newsite"), env={})
    with pytest.raises(PolygenError, match=r"^a new site needs --sip-server, --timezone$"):
        import_csv(Path("p.csv"), Path("newsite"), site={"name": "X", "provisioning_url": "http://x/"}, env={})
    assert {p.name: p.read_bytes() for p in (here / "inventory").iterdir()} == before


def added_lines_only(old: str, new: str) -> list[str]:
    """The lines of ``new`` that are not in ``old``; fails if a line of ``old`` changed or went."""
    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    assert [d for d in diff if d.startswith("- ")] == []
    return [d[2:] for d in diff if d.startswith("+ ")]


MORE = """\
    mac,model,ext,first_name,last_name,mailbox,secret
    64:16:7f:00:02:01,VVX 410,2001,Zed,yes,,pw-2001
    64:16:7f:00:02:01,VVX 410,2002,Ann,Other,0102,"p,w""2002"
    ,,2003,Con,Ference,,pw-2003
    """


@pytest.fixture
def repo(here, monkeypatch):
    """The example inventory in a git repository, with a secrets file that has a comment (tracked
    here only so that `git diff` shows what happened to it too)."""
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)
    shutil.copytree(EXAMPLE, here / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    write(here / "inventory/secrets.yaml", '# ours\nsecrets:\n  "1002": "from-file"   # rotated in May\n')
    (here / "inventory/secrets.yaml").chmod(0o640)
    git(here, "init", "-q")
    git(here, "add", "-A")
    git(here, "commit", "-qm", "example")
    return here


def test_merge_adds_to_the_inventory_keeping_every_line(repo):
    write(repo / "more.csv", MORE)
    r = CliRunner().invoke(cli, ["import", "csv", "more.csv", "--merge"])
    assert (r.exit_code, r.stderr) == (0, ""), r.output
    assert r.stdout == textwrap.dedent("""\
        more.csv: 1 phones, 3 extensions into inventory
          inventory/extensions.yaml: 3 extensions
          inventory/phones.yaml: 1 phone
          inventory/secrets.yaml: 3 passwords (mode 0600)
          inventory/.gitignore: lists the secrets file, which must stay out of git
        """)
    # only added lines, in the style of the entries around them (a YAML 1.1 boolean quoted)
    assert changes(repo) == [
        "inventory/extensions.yaml", "@@ -29,0 +30,10 @@",
        '+  - ext: "2001"', "+    first_name: Zed", '+    last_name: "yes"',
        '+  - ext: "2002"', "+    first_name: Ann", "+    last_name: Other", '+    mailbox: "0102"',
        '+  - ext: "2003"', "+    first_name: Con", "+    last_name: Ference",
        "inventory/phones.yaml", "@@ -16,0 +17,3 @@",
        "+  - mac: 64:16:7f:00:02:01", "+    model: VVX410", '+    lines: ["2001", "2002"]',
        "inventory/secrets.yaml", "@@ -3,0 +4,3 @@",
        '+  "2001": "pw-2001"', '+  "2002": "p,w\\"2002"', '+  "2003": "pw-2003"',
    ]
    loaded = load(repo / "inventory", env={})
    assert [loaded.extensions[e].secret for e in ("1002", "2001", "2002")] == ["from-file", "pw-2001", 'p,w"2002']
    assert loaded.extensions["2001"].last_name == "yes"


def test_merge_edits_as_phone_add_and_ext_add_do(repo, tmp_path):
    """The same entries added by `ext add` and `phone add` change the same lines the same way."""
    shutil.copytree(repo, tmp_path / "by-hand", symlinks=True)
    write(repo / "more.csv", MORE)
    assert CliRunner().invoke(cli, ["import", "csv", "more.csv", "--merge"]).exit_code == 0
    os.chdir(tmp_path / "by-hand")
    for args in (["ext", "add", "2001", "--first-name", "Zed", "--last-name", "yes"],
                 ["ext", "add", "2002", "--first-name", "Ann", "--last-name", "Other", "--mailbox", "0102"],
                 ["ext", "add", "2003", "--first-name", "Con", "--last-name", "Ference"],
                 ["phone", "add", "64:16:7f:00:02:01", "--model", "VVX410", "--line", "2001", "--line", "2002"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
    merged, by_hand = changes(repo), changes(tmp_path / "by-hand")
    tracked = merged.index("inventory/secrets.yaml")  # the passwords differ: ext add makes random ones
    assert merged[:tracked] == by_hand[:by_hand.index("inventory/secrets.yaml")]


def test_a_merge_that_would_break_the_inventory_writes_nothing(repo):
    write(repo / "more.csv", """\
        mac,model,ext,first_name,mailbox,secret
        64:16:7f:00:02:01,VVX410,2001,Zed,,pw-2001
        64:16:7f:00:02:01,VVX410,2002,Ann,1000,pw-2002
        64:16:7f:00:02:02,VVX410,1001,,,
        """)
    before = {p: (p.read_bytes(), p.stat().st_mode) for p in (repo / "inventory").iterdir()}
    r = CliRunner().invoke(cli, ["import", "csv", "more.csv", "--merge"])
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.splitlines() == [
        "more.csv:3: mailbox: directory contact '1000' is also used by extension '1005' "
        "(inventory/extensions.yaml:20); the phone directory needs unique contacts: set another mailbox or "
        "directory: false",
        "more.csv:4: ext: extension '1001' is also a line of phone 0004f2000330 (inventory/phones.yaml:5); put it "
        "on one phone, or set shared: true on the extension (inventory/extensions.yaml:4) to make it a shared line",
        "Error: nothing written: the inventory would have 2 errors after this edit",
    ]
    assert {p: (p.read_bytes(), p.stat().st_mode) for p in (repo / "inventory").iterdir()} == before
    assert git(repo, "status", "--porcelain") == "?? more.csv\n"
    # a dry run of a good file checks the same and writes nothing either; a warning is told at its row
    write(repo / "more.csv", MORE.replace("64:16:7f:00:02:01", "00:11:22:00:02:01"))
    r = CliRunner().invoke(cli, ["import", "csv", "more.csv", "--merge", "--dry-run"])
    assert (r.exit_code, r.stdout.splitlines()[1:]) == (0, ["  (dry run: nothing written)"])
    assert r.stderr == "more.csv:2: mac: warning: 00:11:22 is not a Polycom/Poly OUI; check the MAC\n"
    assert {p: (p.read_bytes(), p.stat().st_mode) for p in (repo / "inventory").iterdir()} == before


def test_merged_passwords_go_only_to_the_secrets_file(repo, tmp_path):
    store = tmp_path / "private" / "sip.yaml"
    store.parent.mkdir()
    write(store, 'secrets:\n  "1002": "from-file"\n')
    store.chmod(0o644)
    write(repo / "more.csv", MORE)
    r = CliRunner().invoke(cli, ["import", "csv", "more.csv", "--merge"], env={"POLYGEN_SECRETS": str(store)})
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == f"  {store}: 3 passwords (mode 0600)"  # outside: no .gitignore
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert store.read_text() == 'secrets:\n  "1002": "from-file"\n  "2001": "pw-2001"\n  "2002": "p,w\\"2002"\n' \
                                '  "2003": "pw-2003"\n'
    for f in (repo / "inventory").iterdir():
        assert "pw-2001" not in f.read_text() and "p,w" not in f.read_text(), f
    assert not (repo / "inventory/.gitignore").exists()
    assert load(repo / "inventory", store, env={}).extensions["2003"].secret == "pw-2003"


def test_merge_puts_a_shared_line_on_a_new_phone(here):
    inv = here / "inventory"
    shutil.copytree(EXAMPLE, inv)
    # a shared line, so that the new phone may carry it too
    exts = inv / "extensions.yaml"
    exts.write_text(exts.read_text().replace('    secret: "s3cret-1001"\n', '    secret: "s3cret-1001"\n    shared: true\n'))
    write(inv / "secrets.yaml", '# ours\nsecrets:\n  "1002": "from-file"   # rotated in May\n')
    (inv / "secrets.yaml").chmod(0o640)
    old = {f: (inv / f).read_text() for f in ("phones.yaml", "extensions.yaml", "secrets.yaml")}
    write(here / "more.csv", """\
        mac,model,ext,first_name,last_name,secret
        0004f2000999,VVX410,2001,Zed,O'Neil,pw-2001
        0004f2000999,VVX410,1001,,,
        """)
    draft, written = import_csv(Path("more.csv"), Path("inventory"), merge=True, env={})
    assert added_lines_only(old["phones.yaml"], (inv / "phones.yaml").read_text()) == [
        '  - mac: 00:04:f2:00:09:99', "    model: VVX410", '    lines: ["2001", "1001"]']
    assert added_lines_only(old["extensions.yaml"], (inv / "extensions.yaml").read_text()) == [
        '  - ext: "2001"', "    first_name: Zed", "    last_name: O'Neil"]
    assert added_lines_only(old["secrets.yaml"], (inv / "secrets.yaml").read_text()) == ['  "2001": "pw-2001"']
    assert (inv / "secrets.yaml").stat().st_mode & 0o777 == 0o600
    loaded = load(inv, env={})
    phone = next(p for p in loaded.phones if p.mac == "0004f2000999")
    assert phone.lines == ("2001", "1001") and loaded.extensions["2001"].secret == "pw-2001"
    assert loaded.extensions["1002"].secret == "from-file"


def test_merge_refuses_what_the_inventory_has(here):
    shutil.copytree(EXAMPLE, here / "inventory")
    write(here / "more.csv", """\
        mac,model,ext,first_name,secret
        00:04:f2:00:03:30,IP330,2001,Zed,z
        0004f2000999,IP330,1001,Ada,x
        """)
    assert problems(import_csv, Path("more.csv"), Path("inventory"), merge=True, env={}) == [
        "more.csv:2: mac: phone 0004f2000330 is already in the inventory (inventory/phones.yaml:3)",
        "more.csv:3: first_name: extension 1001 is already in the inventory (inventory/extensions.yaml:4); leave "
        "its other columns empty to put it on a phone",
    ]


# ------------------------------------------------------------------ the way back
def test_export_then_import_gives_the_same_phones_and_extensions(here):
    r = CliRunner().invoke(cli, ["export", "csv", "-i", str(EXAMPLE), "--with-secrets", "-o", "all.csv"])
    assert r.exit_code == 0, r.output
    assert r.stderr == "not in the CSV: the site, the settings of 1 phone\n"
    assert (here / "all.csv").stat().st_mode & 0o777 == 0o600
    (here / "new").mkdir()
    shutil.copy(EXAMPLE / "site.yaml", here / "new" / "site.yaml")
    import_csv(Path("all.csv"), Path("new"), env={})
    original, back = load(EXAMPLE, env={}), load(Path("new"), env={})
    assert back.extensions == original.extensions
    assert [(p.mac, p.model, p.lines) for p in back.phones] == [(p.mac, p.model, p.lines) for p in original.phones]


def test_a_shared_line_and_keys_through_export_and_import(here):
    """A shared extension on two phones goes out as shared=yes and comes back shared; the keys,
    which a CSV cannot carry, are named as left out."""
    inv = here / "inv"
    shutil.copytree(EXAMPLE, inv)
    exts = inv / "extensions.yaml"
    exts.write_text(exts.read_text().replace('    secret: "s3cret-1003"\n', '    secret: "s3cret-1003"\n    shared: true\n'))
    phones = inv / "phones.yaml"
    phones.write_text(phones.read_text().replace('    lines: ["1001"]\n', '    lines: ["1001", "1003"]\n')
                      .replace('    lines: ["1002"]\n', '    lines: ["1002"]\n    keys: [{blf: "1001"}]\n'))
    r = CliRunner().invoke(cli, ["export", "csv", "-i", str(inv), "--with-secrets", "-o", "all.csv"])
    assert r.exit_code == 0, r.output
    assert r.stderr == "not in the CSV: the site, the settings of 1 phone, the keys of 1 phone\n"
    assert "00:04:f2:00:03:30,IP330,1003,Grace,Hopper,,,,,yes," in (here / "all.csv").read_text()
    (here / "new").mkdir()
    shutil.copy(inv / "site.yaml", here / "new" / "site.yaml")
    import_csv(Path("all.csv"), Path("new"), env={})
    original, back = load(inv, env={}), load(Path("new"), env={})
    assert back.extensions == original.extensions and back.extensions["1003"].shared
    assert [(p.mac, p.lines) for p in back.phones] == [(p.mac, p.lines) for p in original.phones]


def test_export_leaves_passwords_out_unless_asked(here):
    r = CliRunner().invoke(cli, ["export", "csv", "-i", str(EXAMPLE)])
    assert r.stdout == textwrap.dedent("""\
        mac,model,ext,first_name,last_name,display_name,mailbox,label,directory,shared
        00:04:f2:00:03:30,IP330,1001,Ada,Lovelace,,,,,
        00:04:f2:00:03:31,IP331,1002,Charles,Babbage,,,,,
        00:04:f2:00:50:00,IP5000,1099,Conference,Room,,,,no,
        64:16:7f:00:04:10,VVX410,1005,Front,Desk,,1000,,,
        64:16:7f:00:04:10,VVX410,1003,Grace,Hopper,,,,,
        64:16:7f:00:04:10,VVX410,1004,Renée,O'Brien & Søn,,,,,
        """)
    assert "s3cret" not in r.output


# ------------------------------------------------------------------ the command
def test_cli_import_csv_prints_what_it_wrote(here):
    write(here / "phones.csv", CSV)
    r = CliRunner().invoke(cli, ["import", "csv", "phones.csv", "--into", "site1", "--site-name", "Example Corp",
                                 "--provisioning-url", "http://prov.example.com/", "--sip-server", "pbx.example.com",
                                 "--timezone", "America/New_York", "--map", "Dept=ignore"], env={})
    assert r.exit_code == 0, r.output
    assert r.stdout == textwrap.dedent("""\
        phones.csv: 2 phones, 4 extensions into site1
          site1/site.yaml: the site
          site1/extensions.yaml: 4 extensions
          site1/phones.yaml: 2 phones
          site1/secrets.yaml: 4 passwords (mode 0600)
          site1/.gitignore: lists the secrets file, which must stay out of git
        """)
    assert r.stderr == ""


def test_cli_import_csv_errors_exit_1_and_write_nothing(here):
    write(here / "bad.csv", "mac,model,ext,first_name,secret\n0004f2000330,IP331x,1001,Ada,x\n")
    r = CliRunner().invoke(cli, ["import", "csv", "bad.csv", "--into", "inventory", "--merge"],
                           env={"POLYGEN_IMPORT_INTO": "ignored"})
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "Error: inventory has no site: give --site-name, --provisioning-url, --sip-server and --timezone, or write "
        "inventory/site.yaml first (see README, The inventory)"]
    r = CliRunner().invoke(cli, ["import", "csv", "bad.csv", "--dry-run"],
                           env={"POLYGEN_IMPORT_INTO": "site2", "POLYGEN_IMPORT_SITE_NAME": "X",
                                "POLYGEN_IMPORT_PROVISIONING_URL": "http://x/", "POLYGEN_IMPORT_SIP_SERVER": "pbx",
                                "POLYGEN_IMPORT_TIMEZONE": "UTC"})
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "bad.csv:2: model: unknown model 'IP331x' (did you mean IP331?); use a catalog name such as VVX410, or add "
        "it under models: first",
        "Error: 1 problem in bad.csv; nothing written",
    ]
    assert not (here / "site2").exists() and not (here / "inventory").exists()


@pytest.mark.parametrize("order", [("extensions.yaml", "phones.yaml"), ("phones.yaml", "extensions.yaml")])
def test_merge_into_one_file_holding_both_lists(here, order):
    inv = here / "inv"
    inv.mkdir()
    text = "".join((EXAMPLE / n).read_text() for n in ("site.yaml", *order))
    write(inv / "all.yaml", text)
    write(here / "more.csv", "mac,model,ext,first_name,secret\n0004f2000999,IP330,2001,Zed,z\n")
    draft, written = import_csv(Path("more.csv"), inv, merge=True, env={})
    assert [(p.name, what) for p, what in written.files] == [("all.yaml", "1 extension, 1 phone"),
                                                             ("secrets.yaml", "1 password (mode 0600)")]
    ext = ['  - ext: "2001"', "    first_name: Zed"]
    phone = ["  - mac: 00:04:f2:00:09:99", "    model: IP330", '    lines: ["2001"]']
    assert added_lines_only(text, (inv / "all.yaml").read_text()) == (
        ext + phone if order[0] == "extensions.yaml" else phone + ext)
    loaded = load(inv, env={})
    assert "2001" in loaded.extensions and any(p.mac == "0004f2000999" for p in loaded.phones)


def test_merge_into_files_without_a_site_adds_site_yaml(here):
    (here / "inv").mkdir()
    shutil.copy(EXAMPLE / "extensions.yaml", here / "inv")
    write(here / "m.csv", "mac,model,ext,first_name,secret\n0004f2000999,IP330,2001,Zed,z\n")
    draft, written = import_csv(Path("m.csv"), Path("inv"), merge=True, site=SITE, env={})
    assert [(str(p), what) for p, what in written.files] == [
        ("inv/site.yaml", "the site"), ("inv/extensions.yaml", "1 extension"), ("inv/phones.yaml", "1 phone"),
        ("inv/secrets.yaml", "1 password (mode 0600)")]
    assert added_lines_only((EXAMPLE / "extensions.yaml").read_text(), (here / "inv/extensions.yaml").read_text()) \
        == ['  - ext: "2001"', "    first_name: Zed"]
    assert load(Path("inv"), env={}).site.name == "Example Corp"
