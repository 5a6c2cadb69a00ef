"""polygen.inventory: YAML traps, secrets, file order, models:, problems."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from polygen.catalog import Catalog
from polygen.errors import InventoryError
from polygen.inventory import Inventory, Problem, load, normalise_mac

ROOT = Path(__file__).resolve().parents[1]

SITE = """\
site:
  name: Example Corp
  provisioning_url: http://prov.example.com/
  sip_server: pbx.example.com
  timezone: America/New_York
"""
EXTS = """\
extensions:
  - ext: "1001"
    first_name: Ada
    secret: "s3cret-1001"
  - ext: "1002"
    first_name: Charles
    secret: "s3cret-1002"
"""
PHONES = """\
phones:
  - mac: 00:04:f2:00:03:30
    model: IP330
    lines: ["1001"]
"""


@pytest.fixture
def inv_dir(tmp_path, monkeypatch):
    """Write files under tmp/inv (cwd = tmp), so problems name them 'inv/<file>'."""
    monkeypatch.chdir(tmp_path)
    directory = Path("inv")
    directory.mkdir()

    def write(files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
            if name.startswith("secrets."):
                path.chmod(0o600)
        return directory

    return write


def load_ok(directory: Path, **kw) -> Inventory:
    kw.setdefault("env", {})
    return load(directory, **kw)


def problems(directory: Path, **kw) -> list[str]:
    kw.setdefault("env", {})
    with pytest.raises(InventoryError) as exc:
        load(directory, **kw)
    return [str(p) for p in exc.value.problems]


def base(**files: str) -> dict[str, str]:
    out = {"site.yaml": SITE, "extensions.yaml": EXTS, "phones.yaml": PHONES}
    out.update({k.replace("__", "."): v for k, v in files.items()})
    return out


# ------------------------------------------------------------------ the example inventory
def test_example_inventory_loads():
    inv = load_ok(ROOT / "inventory")
    assert [p.mac for p in inv.phones] == ["0004f2000330", "0004f2000331", "0004f2005000", "64167f000410"]
    assert [p.model for p in inv.phones] == ["IP330", "IP331", "IP5000", "VVX410"]
    assert list(inv.extensions) == ["1001", "1002", "1003", "1004", "1005", "1099"]
    assert inv.phones[3].lines == ("1005", "1003", "1004")  # key order as written
    assert inv.extensions["1004"].secret == 'p<ss>&"word'
    assert inv.extensions["1005"].mailbox == "1000"
    assert inv.extensions["1099"].directory is False
    assert inv.site.timezone == "America/New_York"
    assert inv.warnings == ()


# ------------------------------------------------------------------ YAML traps
def test_numbers_and_booleans_keep_their_spelling(inv_dir):
    d = inv_dir(base(
        extensions__yaml="""\
        extensions:
          - ext: 0100
            first_name: yes
            secret: 012345
          - ext: 0200
            first_name: B
            secret: yes
          - ext: 0300
            first_name: C
            secret: 1e3
          - ext: 1001
            first_name: D
            secret: 0x1F
        """,
        phones__yaml="""\
        phones:
          - mac: 00:04:12:34:56:78
            model: VVX410
            lines: [0100, 0200, 0300, 1001]
          - mac: 000412345679
            model: IP330
            lines: []
        """,
        site__yaml=SITE + "  polling: {mode: abs, time: 01:00}\n",
    ))
    inv = load_ok(d)
    assert {e.ext: e.secret for e in inv.extensions.values()} == {
        "0100": "012345", "0200": "yes", "0300": "1e3", "1001": "0x1F"}
    assert inv.extensions["0100"].first_name == "yes"
    assert [p.mac for p in inv.phones] == ["000412345678", "000412345679"]
    assert inv.phones[0].lines == ("0100", "0200", "0300", "1001")
    assert inv.site.polling.time == "01:00"
    # 00:04:12 is not a Polycom OUI: a warning, not an error
    assert [str(w) for w in inv.warnings] == [
        "inv/phones.yaml:2: phones[0].mac: warning: 00:04:12 is not a Polycom/Poly OUI; check the MAC",
        "inv/phones.yaml:5: phones[1].mac: warning: 00:04:12 is not a Polycom/Poly OUI; check the MAC",
    ]


def test_sexagesimal_mac_that_pyyaml_reads_as_a_number(inv_dir):
    d = inv_dir(base(phones__yaml="phones:\n  - {mac: 12:34:56:12:34:56, model: IP330, lines: []}\n"))
    assert [p.mac for p in load_ok(d).phones] == ["123456123456"]


def test_an_unquoted_octal_ext_matches_the_quoted_line(inv_dir):
    d = inv_dir(base(extensions__yaml='extensions:\n  - {ext: 0100, first_name: A, secret: x}\n',
                     phones__yaml='phones:\n  - {mac: 0004f2000001, model: IP330, lines: ["0100"]}\n'))
    assert load_ok(d).phones[0].lines == ("0100",)


def test_duplicate_keys_are_errors_with_both_lines(inv_dir):
    d = inv_dir(base(extensions__yaml="""\
    extensions:
      - ext: "1001"
        first_name: Ada
        secret: one
        secret: two
    """))
    # the file is still read (only the duplicate is dropped), so nothing else cascades
    assert problems(d) == ["inv/extensions.yaml:5: duplicate key 'secret' (first at line 4); remove one of them"]


@pytest.mark.parametrize("spelling", ['"true"', "'True'", "yes", "on", "1", "true"])
def test_directory_flag_true_spellings(inv_dir, spelling):
    d = inv_dir(base(extensions__yaml=EXTS + f"    directory: {spelling}\n"))
    assert load_ok(d).extensions["1002"].directory is True


@pytest.mark.parametrize("spelling", ['"false"', "no", "off", "0", "False"])
def test_directory_flag_false_spellings(inv_dir, spelling):
    d = inv_dir(base(extensions__yaml=EXTS + f"    directory: {spelling}\n"))
    assert load_ok(d).extensions["1002"].directory is False


@pytest.mark.parametrize(("value", "found"), [("maybe", "'maybe'"), ('"yes"', "'yes'"), ("[x]", "a list"),
                                              ("{a: b}", "a mapping")])
def test_directory_flag_refused(inv_dir, value, found):
    d = inv_dir(base(extensions__yaml=EXTS + f"    directory: {value}\n"))
    assert problems(d) == [f"inv/extensions.yaml:8: extensions[1].directory: expected true or false, found {found}"]


# ------------------------------------------------------------------ MAC normalisation
HEX = "0123456789abcdefABCDEF"
hex12 = st.text(alphabet=HEX, min_size=12, max_size=12)


def _spell(h: str, style: str) -> str:
    pairs = [h[i:i + 2] for i in range(0, 12, 2)]
    return {
        "colon": ":".join(pairs),
        "dash": "-".join(pairs),
        "dot": ".".join(h[i:i + 4] for i in range(0, 12, 4)),
        "plain": h,
        "space": " ".join(pairs),
    }[style]


@given(hex12, st.sampled_from(["colon", "dash", "dot", "plain", "space"]),
       st.sampled_from([str.lower, str.upper, lambda s: s]), st.sampled_from(["", " ", "\t", "\n"]))
@example("0004F2123456", "colon", str.upper, "")
def test_normalise_mac_accepts_every_spelling(h, style, case, pad):
    assert normalise_mac(pad + case(_spell(h, style)) + pad) == h.lower()


@given(st.text(alphabet=HEX + ":-. ", max_size=30))
def test_normalise_mac_needs_exactly_12_hex_digits(text):
    digits = re.sub(r"[:\-. ]", "", text)
    result = normalise_mac(text)
    if len(digits) == 12:
        assert result == digits.lower()
    else:
        assert result is None


@given(hex12, st.integers(0, 12), st.characters(exclude_characters=HEX + ":-. \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
                                                                     "\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                                                     "\u2006\u2007\u2008\u2009\u200a\u2028\u2029"
                                                                     "\u202f\u205f\u3000"))
def test_normalise_mac_refuses_any_other_character(h, at, bad):
    assert normalise_mac(h[:at] + bad + h[at:]) is None


@pytest.mark.parametrize("text", ["", "0", "00:04:f2:12:34", "00:04:f2:12:34:56:78", "0004f2-12345g",
                                  "０００４ｆ２１２３４５６", "0x0004f2123456", "00_04_f2_12_34_56"])
def test_normalise_mac_refuses(text):
    assert normalise_mac(text) is None


# ------------------------------------------------------------------ secrets
SECRET_EXTS = """\
extensions:
  - {ext: "1001", first_name: A, secret: inline-1001}
  - {ext: "1002", first_name: B, secret: inline-1002}
  - {ext: "1003", first_name: C, secret: inline-1003}
  - {ext: "front.desk", first_name: D}
"""


def test_secrets_precedence_env_over_file_over_inline(inv_dir):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS, secrets__yaml="""\
    secrets:
      "1002": file-1002
      "1003": file-1003
    """))
    env = {"POLYGEN_SECRET_1003": "env-1003", "POLYGEN_SECRET_FRONT_DESK": "env-desk"}
    inv = load_ok(d, env=env)
    assert {e.ext: e.secret for e in inv.extensions.values()} == {
        "1001": "inline-1001", "1002": "file-1002", "1003": "env-1003", "front.desk": "env-desk"}
    assert inv.secrets() == {"inline-1001", "file-1002", "env-1003", "env-desk"}
    assert inv.warnings == ()


def test_secrets_from_os_environ_by_default(inv_dir, monkeypatch):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS))
    monkeypatch.setenv("POLYGEN_SECRET_FRONT_DESK", "from-environ")
    assert load(d).extensions["front.desk"].secret == "from-environ"


def test_an_empty_env_secret_does_not_win(inv_dir):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS))
    inv = load_ok(d, env={"POLYGEN_SECRET_1001": "", "POLYGEN_SECRET_FRONT_DESK": "x"})
    assert inv.extensions["1001"].secret == "inline-1001"


def test_secret_is_not_in_the_repr(inv_dir):
    inv = load_ok(inv_dir(base()))
    assert "s3cret" not in repr(inv.extensions)


@pytest.mark.parametrize("name", ["secrets.yaml", "secrets.yml"])
def test_secrets_file_is_not_part_of_the_inventory(inv_dir, name):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS, **{name: 'secrets:\n  "front.desk": from-file\n'}))
    inv = load_ok(d)
    assert inv.extensions["front.desk"].secret == "from-file"
    assert inv.sources == ("inv/extensions.yaml", "inv/phones.yaml", "inv/site.yaml")


def test_secrets_file_in_a_subdirectory_is_an_inventory_file(inv_dir):
    d = inv_dir(base(**{"sub/secrets.yaml": 'secrets:\n  "1001": x\n'}))
    assert problems(d) == [
        "inv/sub/secrets.yaml:1: secrets: unknown key 'secrets'; allowed: site, extensions, phones, models, contacts"]


def test_explicit_secrets_file_outside_the_inventory(inv_dir, tmp_path):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS, secrets__yaml='secrets:\n  "1001": ignored\n'))
    other = tmp_path / "elsewhere.yaml"
    other.write_text('secrets:\n  "front.desk": elsewhere\n')
    other.chmod(0o600)
    inv = load_ok(d, secrets=other)
    assert inv.extensions["front.desk"].secret == "elsewhere"
    assert inv.extensions["1001"].secret == "inline-1001"  # the inventory's own secrets.yaml is not read
    assert "inv/secrets.yaml" not in inv.sources


def test_world_readable_secrets_file_warns(inv_dir):
    d = inv_dir(base(secrets__yaml='secrets:\n  "1001": x\n'))
    (d / "secrets.yaml").chmod(0o644)
    inv = load_ok(d)
    assert [str(w) for w in inv.warnings] == [
        "inv/secrets.yaml: warning: secrets file 'inv/secrets.yaml' is readable by everyone; "
        "run: chmod 600 inv/secrets.yaml"]
    (d / "secrets.yaml").chmod(0o640)
    assert load_ok(d).warnings == ()


def test_missing_secrets_file_is_an_error(inv_dir):
    d = inv_dir(base())
    assert problems(d, secrets=Path("nope.yaml")) == ["nope.yaml: secrets file 'nope.yaml' does not exist"]


def test_secret_for_unknown_extension_is_a_warning(inv_dir):
    d = inv_dir(base(secrets__yaml='secrets:\n  "1001": x\n  "1011": y\n'))
    inv = load_ok(d)
    assert [str(w) for w in inv.warnings] == [
        "inv/secrets.yaml:3: secrets.1011: warning: no extension '1011' in the inventory (did you mean '1001'?)"]


def test_missing_secret_names_all_three_sources(inv_dir):
    d = inv_dir(base(extensions__yaml=SECRET_EXTS))
    assert problems(d) == [
        "inv/extensions.yaml:5: extensions[3].secret: missing secret for extension 'front.desk': set it here, "
        "in the secrets file (secrets: {\"front.desk\": …}) or in $POLYGEN_SECRET_FRONT_DESK"]


# ------------------------------------------------------------------ the phones' admin password
def test_admin_password_precedence_env_over_file_over_inline(inv_dir):
    d = inv_dir(base(site__yaml=SITE + "  admin_password: inline-pw\n"))
    assert load_ok(d).site.admin_password == "inline-pw"
    (d / "secrets.yaml").write_text('admin_password: file-pw\n')  # no secrets: needed
    (d / "secrets.yaml").chmod(0o600)
    inv = load_ok(d)
    assert inv.site.admin_password == "file-pw" and "file-pw" in inv.secrets()
    assert load_ok(d, env={"POLYGEN_ADMIN_PASSWORD": "env-pw"}).site.admin_password == "env-pw"
    (d / "site.yaml").write_text(SITE)  # the key is optional when the secret lives elsewhere
    assert load_ok(d).site.admin_password == "file-pw"
    assert "file-pw" not in repr(load_ok(d).site)


@pytest.mark.parametrize(("how", "where"), [("inline", ""), ("env", " (the password from $POLYGEN_ADMIN_PASSWORD)"),
                                            ("file", " (the password from admin_password in the secrets file)")])
def test_admin_password_over_32_characters(inv_dir, how, where):
    long = "x" * 33
    site = SITE + (f"  admin_password: {long}\n" if how == "inline" else "")
    d = inv_dir(base(site__yaml=site, **({"secrets.yaml": f"admin_password: {long}\n"} if how == "file" else {})))
    env = {"POLYGEN_ADMIN_PASSWORD": long} if how == "env" else {}
    line = 6 if how == "inline" else 2  # else: where the site begins
    assert problems(d, env=env) == [
        f"inv/site.yaml:{line}: site.admin_password: 33 characters, but the phones take at most 32{where}; "
        "choose another password"]
    assert long not in "".join(problems(d, env=env))


def test_admin_password_of_printable_ascii_only(inv_dir):
    d = inv_dir(base(site__yaml=SITE + '  admin_password: "pässwort"\n'))
    assert problems(d) == [
        "inv/site.yaml:6: site.admin_password: only printable ASCII characters (letters, digits, space and "
        "punctuation) fit; choose another password"]


def test_an_admin_password_in_the_public_site_file_is_refused(inv_dir):
    d = inv_dir(base(site__yaml=SITE + '  settings: {device.auth.localAdminPassword: "pw"}\n'))
    assert [p for p in problems(d) if ": warning: " not in p] == [
        "inv/site.yaml:6: site.settings.device.auth.localAdminPassword: would be in the site file, which "
        "everyone may read; use site.admin_password, which goes into each phone's private file"]


# ------------------------------------------------------------------ voicemail
def test_mailbox_defaults_to_the_extension_and_subscribes_at_the_sip_server(inv_dir):
    from polygen.inventory import mwi_address

    d = inv_dir(base(site__yaml=SITE + '  voicemail: "*97"\n',
                     extensions__yaml=EXTS + '    mailbox: "2000"\n'))
    inv = load_ok(d)
    assert [e.mailbox for e in inv.extensions.values()] == ["1001", "2000"]
    assert mwi_address(inv.site, "2000") == "2000@pbx.example.com"
    v6 = load_ok(inv_dir(base(site__yaml=SITE.replace("pbx.example.com", '"[2001:db8::5]:5070"')))).site
    assert mwi_address(v6, "1001") == "1001@[2001:db8::5]:5070"
    assert mwi_address(v6, "vm-1001@voicemail.example.com") == "vm-1001@voicemail.example.com"


def test_a_subscription_longer_than_the_phones_take(inv_dir):
    d = inv_dir(base(site__yaml=SITE + '  voicemail: "*97"\n',
                     extensions__yaml=EXTS + f'    mailbox: "{"9" * 50}"\n'))
    assert problems(d) == [
        f"inv/extensions.yaml:8: extensions[1].mailbox: the message-waiting subscription '{'9' * 50}@pbx.example.com'"
        " is 66 characters; the phones take 64 (a shorter mailbox or site.sip_server)"]
    assert load_ok(inv_dir(base(extensions__yaml=EXTS + f'    mailbox: "{"9" * 50}"\n')))  # no voicemail: fine


# ------------------------------------------------------------------ files
def test_files_are_read_in_sorted_order_recursively(inv_dir):
    d = inv_dir({
        "site.yaml": SITE,
        "b/phones.yaml": PHONES,
        "a.yml": EXTS,
        "a/z.yaml": "phones: []\n",
        "b.yaml": "extensions: []\n",
        ".git/x.yaml": "not: [valid\n",
        "c/.hidden.yaml": "not: [valid\n",
        "notes.txt": "not: [valid\n",
        "empty.yaml": "",
    })
    inv = load_ok(d)
    assert inv.sources == ("inv/a.yml", "inv/a/z.yaml", "inv/b.yaml", "inv/b/phones.yaml",
                           "inv/empty.yaml", "inv/site.yaml")


def test_first_occurrence_is_the_first_file_in_sorted_order(inv_dir):
    d = inv_dir(base(**{"2.yaml": 'extensions:\n  - {ext: "1001", first_name: X, secret: x}\n',
                        "10.yaml": 'extensions:\n  - {ext: "1001", first_name: Y, secret: y}\n'}))
    # "10.yaml" < "2.yaml" < "extensions.yaml": plain string order, as ls sorts in the C locale
    assert problems(d) == [
        "inv/2.yaml:2: extensions[0].ext: duplicate extension '1001' (first at inv/10.yaml:2)",
        "inv/extensions.yaml:2: extensions[0].ext: duplicate extension '1001' (first at inv/10.yaml:2)",
    ]


def test_missing_directory_and_no_files(tmp_path):
    with pytest.raises(InventoryError, match=r"inventory directory '.*nope' does not exist; create it or pass -i DIR"):
        load(tmp_path / "nope")
    with pytest.raises(InventoryError, match=r"no \*\.yaml files in inventory directory"):
        load(tmp_path)


def test_problems_are_in_file_then_line_order(inv_dir):
    d = inv_dir(base(
        phones__yaml="""\
        phones:
          - mac: 00:04:f2:00:03:30
            model: IP330
            lines: ["1001", "1009"]
            color: red
        """,
        extensions__yaml=EXTS.replace("first_name: Charles", "frist_name: Charles"),
    ))
    assert problems(d) == [
        "inv/extensions.yaml:5: extensions[1].first_name: missing required field 'first_name'",
        "inv/extensions.yaml:6: extensions[1].frist_name: unknown key 'frist_name' (did you mean 'first_name'?); "
        "allowed: ext, first_name, last_name, secret, mailbox, directory, display_name, label, shared",
        "inv/phones.yaml:4: phones[0].lines[1]: no extension '1009' in the inventory (did you mean '1002'?)",
        "inv/phones.yaml:5: phones[0].color: unknown key 'color'; allowed: mac, model, lines, keys, settings, "
        "timezone, description",
    ]


def test_a_file_that_does_not_parse_hides_references_into_it(inv_dir):
    d = inv_dir(base(extensions__yaml=EXTS + "  - [\n"))
    found = problems(d)
    assert len(found) == 1 and found[0].startswith("inv/extensions.yaml:")
    assert "no extension" not in found[0]


def test_a_site_in_a_file_that_does_not_parse_is_not_reported_missing(inv_dir):
    d = inv_dir(base(site__yaml=SITE + "  name: [\n"))
    found = problems(d)
    assert len(found) == 1 and "YAML syntax error" in found[0]


def test_site_twice_points_at_the_site_keys(inv_dir):
    d = inv_dir(base(**{"zz.yaml": "# another\n" + SITE}))
    assert problems(d) == ["inv/zz.yaml:2: site: 'site:' is defined again (first at inv/site.yaml:1); keep one"]


def test_empty_site_is_no_site(inv_dir):
    d = inv_dir(base(site__yaml="site:\n"))
    assert problems(d) == ["inv: site: no 'site:' section in any inventory file; add one (see README)"]


def test_duplicate_directory_contact_points_at_the_mailbox(inv_dir):
    d = inv_dir(base(extensions__yaml=EXTS + '    directory: true\n    mailbox: "1001"\n'))
    assert problems(d) == [
        "inv/extensions.yaml:9: extensions[1].mailbox: directory contact '1001' is also used by extension "
        "'1001' (inv/extensions.yaml:2); the phone directory needs unique contacts: set another mailbox or "
        "directory: false"]
    d2 = inv_dir(base(extensions__yaml=EXTS + '    directory: false\n    mailbox: "1001"\n'))
    assert load_ok(d2).extensions["1002"].mailbox == "1001"


@pytest.mark.parametrize("digits", ["²", "１２", "٣"])
def test_non_ascii_digits_are_not_numbers(inv_dir, digits):
    d = inv_dir(base(site__yaml=SITE.replace("pbx.example.com", f'"pbx.example.com:{digits}"')
                     + f'  polling: {{mode: abs, period: "{digits}"}}\n'))
    assert problems(d) == [
        f"inv/site.yaml:4: site.sip_server: 'pbx.example.com:{digits}' is not a host name, IP address or host:port",
        f"inv/site.yaml:6: site.polling.period: expected a whole number from 3600 to 31536000, found '{digits}'",
    ]


@pytest.mark.parametrize(("server", "host", "port"), [
    ("pbx.example.com", "pbx.example.com", None),
    ("pbx.example.com:5061", "pbx.example.com", 5061),
    ("10.0.0.1:5060", "10.0.0.1", 5060),
    ("2001:db8::1", "2001:db8::1", None),
    ("[2001:db8::1]:5060", "2001:db8::1", 5060),
])
def test_sip_server_host_and_port(inv_dir, server, host, port):
    d = inv_dir(base(site__yaml=SITE.replace("pbx.example.com", f'"{server}"')))
    site = load_ok(d).site
    assert (site.sip_server, site.sip_port) == (host, port)


def test_polling_defaults_and_random(inv_dir):
    assert load_ok(inv_dir(base())).site.polling.time == "01:00"
    d = inv_dir(base(site__yaml=SITE + '  polling: {mode: random, time: "01:00", time_random_end: "03:30"}\n'))
    polling = load_ok(d).site.polling
    assert (polling.mode, polling.time, polling.time_random_end, polling.period) == ("random", "01:00", "03:30", 86400)


# ------------------------------------------------------------------ models:
def test_models_override_changes_the_dialect(inv_dir):
    assert Catalog().models["IP331"].dialect == "uc"
    d = inv_dir(base(site__yaml=SITE + 'models:\n  SPIP_331:\n    firmware: "3.2.7"\n',
                     phones__yaml='phones:\n  - {mac: 0004f2000331, model: IP331, lines: ["1001"]}\n'))
    inv = load_ok(d)
    model = inv.model(inv.phones[0])
    assert (model.key, model.firmware, model.dialect) == ("IP331", "3.2.7", "sip3")
    assert (model.ua_token, model.lines) == ("SPIP_331", 2)  # the rest is the catalog's
    assert Catalog().models["IP331"].firmware == "4.0.15"  # per load, not global


def test_models_override_lines(inv_dir):
    d = inv_dir(base(site__yaml=SITE + "models:\n  IP330: {lines: 3}\n",
                     extensions__yaml=EXTS + '  - {ext: "1003", first_name: G, secret: x}\n',
                     phones__yaml='phones:\n  - {mac: 0004f2000330, model: IP330, lines: ["1001", "1002", "1003"]}\n'))
    assert load_ok(d).phones[0].lines == ("1001", "1002", "1003")


def test_models_adds_a_new_model(inv_dir):
    d = inv_dir(base(
        site__yaml=SITE + 'models:\n  VVX999:\n    name: VVX 999\n    ua_token: VVX_999\n    lines: 24\n'
                          '    firmware: "6.4.6"\n    part_number: 3111-99999-001\n',
        phones__yaml='phones:\n  - {mac: 64167f000999, model: vvx 999, lines: ["1001"]}\n'))
    inv = load_ok(d)
    model = inv.model(inv.phones[0])
    assert (model.key, model.name, model.ua_token, model.token, model.lines, model.dialect, model.part_number) == (
        "VVX999", "VVX 999", "VVX_999", "VVX999", 24, "uc", "3111-99999-001")
    assert [m.key for m in inv.models_in_use()] == ["VVX999"]


@pytest.mark.parametrize("part", ["../x", "3111 46162", "3111-46162-001.sip.ld", "-3111", "x" * 33])
def test_a_part_number_must_be_one(inv_dir, part):
    """It names the split image a phone asks for (<part>.sip.ld)."""
    d = inv_dir(base(site__yaml=SITE + f'models:\n  VVX410: {{part_number: "{part}"}}\n'))
    assert problems(d) == [f"inv/site.yaml:7: models.VVX410.part_number: '{part}' is not a part number such as "
                           "3111-46162-001 (letters, digits, '-')"]


def test_a_new_model_needs_token_lines_and_firmware(inv_dir):
    d = inv_dir(base(site__yaml=SITE + "models:\n  VVX999: {lines: 24}\n"))
    assert problems(d) == [
        "inv/site.yaml:7: models.VVX999: 'VVX999' is not in the built-in catalog; "
        "a new model needs ua_token, lines and firmware"]


def test_unknown_model_suggestion(inv_dir):
    d = inv_dir(base(phones__yaml=PHONES.replace("IP330", "VVX41")))
    assert problems(d) == ["inv/phones.yaml:3: phones[0].model: unknown model 'VVX41' (did you mean VVX410?); "
                           "add it under models: if it is new"]


# ------------------------------------------------------------------ raw parameters
def test_unknown_parameters_are_warnings_with_suggestions(inv_dir):
    d = inv_dir(base(site__yaml=SITE + '  settings: {up.headsetMod: "0", up.headsetMode: "0"}\n',
                     phones__yaml=PHONES + '    settings: {voIpProt.SIP.outboundProxy.addres: x}\n'))
    inv = load_ok(d)
    assert [str(w) for w in inv.warnings] == [
        "inv/phones.yaml:5: phones[0].settings.voIpProt.SIP.outboundProxy.addres: warning: unknown to 3.3.5 "
        "firmware (did you mean voIpProt.SIP.outboundProxy.address?)",
        "inv/site.yaml:6: site.settings.up.headsetMod: warning: unknown Polycom parameter "
        "(did you mean up.headsetMode?)",
    ]
    assert inv.site.settings == (("up.headsetMod", "0"), ("up.headsetMode", "0"))


# ------------------------------------------------------------------ Problem
def test_problem_format():
    assert str(Problem("inv/p.yaml", 14, "phones[3].model", "unknown model 'VVX41'")) == (
        "inv/p.yaml:14: phones[3].model: unknown model 'VVX41'")
    assert str(Problem("inv/p.yaml", 3, "", "duplicate key 'x'")) == "inv/p.yaml:3: duplicate key 'x'"
    assert str(Problem("inv/s.yaml", None, "", "readable", "warning")) == "inv/s.yaml: warning: readable"
    assert str(Problem("inv", None, "site", "no site", "warning")) == "inv: site: warning: no site"
    assert Problem("f", 1, "p", "m").as_dict() == {
        "file": "f", "line": 1, "path": "p", "message": "m", "severity": "error"}


def test_inventory_error_counts_errors_only(inv_dir):
    d = inv_dir(base(phones__yaml=PHONES.replace("00:04:f2:00:03:30", "00:11:22:00:03:3")))
    with pytest.raises(InventoryError) as exc:
        load_ok(d)
    assert exc.value.message == "the inventory has 1 error"
    assert [p.severity for p in exc.value.problems] == ["error"]
    d = inv_dir(base(phones__yaml=PHONES.replace("IP330", "IP33").replace("00:04:f2", "00:04:f")))
    with pytest.raises(InventoryError, match="^the inventory has 2 errors$"):
        load_ok(d)


# ------------------------------------------------------------------ override files
def test_site_overrides_keep_or_discard(inv_dir):
    assert load_ok(inv_dir(base())).site.overrides == "keep"  # as on Polycom's own servers
    assert load_ok(inv_dir(base(site__yaml=SITE + "  overrides: discard\n"))).site.overrides == "discard"
    assert problems(inv_dir(base(site__yaml=SITE + "  overrides: ignore\n"))) == [
        "inv/site.yaml:6: site.overrides: expected keep (a setting changed on a phone survives its reboot) "
        "or discard (the inventory's value comes back), found 'ignore'"]
