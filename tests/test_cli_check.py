"""`polygen check`: help, clean and failing runs, --strict, --format json, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.cli import cli

ROOT = Path(__file__).resolve().parents[1]

SITE = """\
site:
  name: Example Corp
  provisioning_url: http://prov.example.com/
  sip_server: pbx.example.com
  timezone: America/New_York
  admin_password: Adm1n-pw
  provisioning_auth: {user: phones-a, password: "Wq7-first-pass"}
"""
NO_AUTH_SITE = SITE.replace('  provisioning_auth: {user: phones-a, password: "Wq7-first-pass"}\n', "")
EXTS = """\
extensions:
  - {ext: "1001", first_name: Ada, secret: s3cret}
"""
PHONES = """\
phones:
  - {mac: 00:04:f2:00:03:30, model: VVX410, lines: ["1001"]}
"""


@pytest.fixture
def inv(tmp_path, monkeypatch):
    """An inventory directory 'inv' in the current directory; returns a function to write files."""
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    Path("inv").mkdir()

    def write(**files: str) -> str:
        merged = {"site.yaml": SITE, "extensions.yaml": EXTS, "phones.yaml": PHONES}
        merged.update({k.replace("__", "."): v for k, v in files.items()})
        for name, text in merged.items():
            Path("inv", name).write_text(text)
        return "inv"

    return write


def run(*args: str, **kw):
    return CliRunner().invoke(cli, ["check", *args], catch_exceptions=False, **kw)


def test_help():
    result = run("--help")
    assert result.exit_code == 0
    assert "Validate the inventory and report every problem at once." in result.output
    assert "Example:" in result.output
    for option in ("-i, --inventory", "--format [text|json]", "--strict", "--secrets", "--firmware"):
        assert option in result.output
    assert run("-h").output == result.output


def test_example_inventory_passes(tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("POLYGEN_")]:
        monkeypatch.delenv(var)
    shutil.copytree(ROOT / "inventory", tmp_path / "inventory")
    monkeypatch.chdir(tmp_path)
    result = run()
    assert result.exit_code == 0, result.output
    # every phone of the example runs UC Software (3.3 or later) and takes the admin password
    assert result.stdout == "inventory: 4 phones, 6 extensions: OK\n"
    assert result.stderr == no_auth_warning("inventory/site.yaml")


def no_auth_warning(site_file: str) -> str:
    return ("warning: no provisioning auth: anyone who can reach the server and knows a phone's MAC address "
            "(printed on its box, seen on the network) can download its config, SIP passwords included; add "
            f"site.provisioning_auth (a user and a password) to {site_file} (README: Provisioning auth)\n")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_provisioning_auth_is_a_loud_warning(inv, fmt):
    """Not an inventory problem (exit 0, even with --strict): a warning on stderr naming the risk
    and the file to edit, in either format."""
    result = run("-i", inv(site__yaml=NO_AUTH_SITE), "--format", fmt, "--strict")
    assert result.exit_code == 0
    assert result.stderr == no_auth_warning("inv/site.yaml")
    if fmt == "text":
        assert result.stdout == "inv: 1 phones, 1 extensions: OK\n"
    else:
        assert json.loads(result.stdout) == {"ok": True, "errors": [], "warnings": []}


def test_clean(inv):
    result = run("-i", inv())
    assert (result.exit_code, result.stdout, result.stderr) == (0, "inv: 1 phones, 1 extensions: OK\n", "")


def test_errors_exit_1_with_every_problem_and_a_summary(inv):
    d = inv(phones__yaml=PHONES.replace("VVX410", "VVX41").replace("00:04:f2:00:03:30", "00:04:f2:00:03"))
    result = run("-i", d)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "inv/phones.yaml:2: phones[0].mac: '00:04:f2:00:03' is not a MAC address; write 12 hex digits, "
        "e.g. 00:04:f2:12:34:56",
        "inv/phones.yaml:2: phones[0].model: unknown model 'VVX41' (did you mean VVX410?); "
        "add it under models: if it is new",
        "Error: 2 problems in inv",
    ]


def test_one_problem_is_singular(inv):
    result = run("-i", inv(phones__yaml=PHONES.replace("VVX410", "IP999")))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: 1 problem in inv"


WARN_PHONES = PHONES.replace("}", ', settings: {up.headsetMod: "1"}}')
WARNING = ("inv/phones.yaml:2: phones[0].settings.up.headsetMod: warning: unknown to 5.9.7 firmware "
           "(did you mean up.headsetMode?)")


def test_warnings_do_not_fail_without_strict(inv):
    result = run("-i", inv(phones__yaml=WARN_PHONES))
    assert result.exit_code == 0
    assert result.stderr == WARNING + "\n"
    assert result.stdout == "inv: 1 phones, 1 extensions: OK (1 warning)\n"


@pytest.mark.parametrize("how", ["option", "env"])
def test_strict_makes_warnings_fatal(inv, how):
    d = inv(phones__yaml=WARN_PHONES)
    result = run("-i", d, "--strict") if how == "option" else run("-i", d, env={"POLYGEN_STRICT": "1"})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [WARNING, "Error: 1 problem in inv"]
    assert result.stdout == ""


def test_json_clean(inv):
    result = run("-i", inv(), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "errors": [], "warnings": []}
    assert result.stderr == ""


def test_json_errors_and_warnings(inv):
    d = inv(phones__yaml=WARN_PHONES + '  - {mac: 0004f2000331, model: IP330, lines: ["1002"]}\n')
    result = run("-i", d, "--format", "json")
    assert result.exit_code == 1
    assert result.stderr == ""
    assert json.loads(result.stdout) == {
        "ok": False,
        "errors": [{"file": "inv/phones.yaml", "line": 3, "path": "phones[1].lines[0]",
                    "message": "no extension '1002' in the inventory (did you mean '1001'?)",
                    "severity": "error"}],
        "warnings": [{"file": "inv/phones.yaml", "line": 2, "path": "phones[0].settings.up.headsetMod",
                      "message": "unknown to 5.9.7 firmware (did you mean up.headsetMode?)",
                      "severity": "warning"}],
    }


def test_json_strict_warnings_are_not_ok(inv):
    result = run("-i", inv(phones__yaml=WARN_PHONES), "--format", "json", "--strict")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert doc["ok"] is False and doc["errors"] == [] and len(doc["warnings"]) == 1


def test_json_problem_without_line(inv):
    result = run("-i", inv(site__yaml="# no site here\n"), "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == [
        {"file": "inv", "line": None, "path": "site",
         "message": "no 'site:' section in any inventory file; add one (see README)", "severity": "error"}]


def test_inventory_from_the_environment(inv):
    d = inv()
    result = run(env={"POLYGEN_INVENTORY": d})
    assert (result.exit_code, result.stdout) == (0, "inv: 1 phones, 1 extensions: OK\n")


def test_secrets_option(inv, tmp_path):
    d = inv(extensions__yaml='extensions:\n  - {ext: "1001", first_name: Ada}\n')
    assert run("-i", d).exit_code == 1
    secrets = tmp_path / "outside.yaml"
    secrets.write_text('secrets:\n  "1001": pw\n')
    secrets.chmod(0o600)
    result = run("-i", d, "--secrets", str(secrets))
    assert (result.exit_code, result.stderr) == (0, "")


def test_missing_inventory_directory_exits_1(inv):
    result = run("-i", "nope")
    assert result.exit_code == 1
    assert result.output == "Error: inventory directory 'nope' does not exist; create it or pass -i DIR\n"


def test_inventory_without_yaml_files_exits_1(inv):
    Path("empty").mkdir()
    result = run("-i", "empty")
    assert result.exit_code == 1
    assert result.output == "Error: no *.yaml files in inventory directory 'empty'\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "xml"], "Invalid value for '--format'"),
    (["--bogus"], "No such option '--bogus'"),
    (["-i", "inv/site.yaml"], "is a file"),
    (["extra-argument"], "Got unexpected extra argument"),
])
def test_usage_errors_exit_2(inv, args, message):
    inv()
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("variable, value, message", [
    (b"POLYGEN_SECRET_1001", b"not-\xff-utf8",
     "$POLYGEN_SECRET_1001: the password for extension '1001' is not valid UTF-8 text; set it again as UTF-8"),
    (b"POLYGEN_SECRET_1001", b"bell\x07",
     "$POLYGEN_SECRET_1001: the password for extension '1001' contains the control character U+0007; "
     "a password is one line of printable text"),
    (b"POLYGEN_PROVISIONING_PASSWORD", b"\xc3(",
     "$POLYGEN_PROVISIONING_PASSWORD: the provisioning password is not valid UTF-8 text; set it again as UTF-8"),
    (b"POLYGEN_PROVISIONING_PASSWORD", b"line\nbreak",
     "$POLYGEN_PROVISIONING_PASSWORD: the provisioning password contains the control character U+000A; "
     "a password is one line of printable text (a YAML block scalar, | or >, ends with a newline: quote the "
     "password instead)"),
])
def test_secrets_from_the_environment_are_checked(tmp_path, variable, value, message):
    """Bytes in the environment that are not UTF-8, or control characters, give a clear error
    naming the variable (never an internal error, never a file written with them)."""
    import subprocess
    import sys

    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "site.yaml").write_text(NO_AUTH_SITE + "  provisioning_auth: {user: phones-a}\n")
    (inv / "extensions.yaml").write_text(EXTS)
    (inv / "phones.yaml").write_text(PHONES)
    env = {k: v for k, v in os.environb.items() if not k.startswith(b"POLYGEN_")}
    env[b"POLYGEN_PROVISIONING_PASSWORD"] = b"prov-pass"
    env[variable] = value
    for command in (["check"], ["build", "-o", str(tmp_path / "out"), "-t", str(ROOT / "templates")]):
        r = subprocess.run([sys.executable, "-m", "polygen", *command, "-i", str(inv)], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[0] == message, r.stderr
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ dialling and the admin password
def test_an_extension_the_dial_plan_cannot_send(inv):
    d = inv(extensions__yaml=EXTS + '  - {ext: "100", first_name: Lobby, secret: s3cret}\n')
    result = run("-i", d)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "inv/extensions.yaml:2: extensions[0].ext: 1001 is cut short by 100 (inv/extensions.yaml:3), which is "
        'dialled the moment it is complete: dialled 1001, the phone sends "100" after 3 digits '
        '(rule 1 "100" matches); renumber one of them',
        "Error: 1 problem in inv",
    ]


def test_a_phones_own_digit_map_that_forgets_the_voicemail(inv):
    d = inv(site__yaml=SITE + '  voicemail: "*97"\n',
            phones__yaml=PHONES.replace("}", ', settings: {dialplan.digitmap: "1xxx"}}'))
    result = run("-i", d)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "inv/site.yaml:8: site.voicemail: *97 is never sent on phone 0004f2000330 (dialplan.digitmap at "
        "inv/phones.yaml:2): dialled *97, the phone waits for Send (impossible match after 1 digit); "
        "give the digit map a rule for it (e.g. *97)",
        "Error: 1 problem in inv",
    ]


ABSENT = ("inv/site.yaml:1: site.admin_password: warning: not set: every phone keeps the admin password it left "
          "the factory with (456), which opens its settings menu and web interface; set it here, as "
          "admin_password in the secrets file or in $POLYGEN_ADMIN_PASSWORD")


def test_check_warns_when_the_admin_password_is_absent(inv):
    d = inv(site__yaml=SITE.replace("  admin_password: Adm1n-pw\n", ""))
    result = run("-i", d)
    assert (result.exit_code, result.stdout) == (0, "inv: 1 phones, 1 extensions: OK (1 warning)\n")
    assert result.stderr == ABSENT + "\n"
    assert run("-i", d, "--strict").exit_code == 1
    doc = json.loads(run("-i", d, "--format", "json").stdout)
    assert doc["ok"] is True and [w["message"] for w in doc["warnings"]] == [ABSENT.split("warning: ", 1)[1]]
    # a password from the environment or the secrets file is as good as one written here
    assert run("-i", d, env={"POLYGEN_ADMIN_PASSWORD": "from-env"}).stderr == ""


def test_check_names_the_phones_that_cannot_take_an_admin_password(inv):
    phones = PHONES + "".join(f'  - {{mac: 00:04:f2:00:40:0{n}, model: IP301, lines: []}}\n' for n in range(7))
    result = run("-i", inv(phones__yaml=phones))
    assert result.exit_code == 0
    assert result.stderr == (
        "inv/site.yaml:6: site.admin_password: warning: SIP 3.2 and older firmware takes no admin password from its "
        "configuration: 0004f2004000 (SoundPoint IP 301, 3.1.8), 0004f2004001 (SoundPoint IP 301, 3.1.8), "
        "0004f2004002 (SoundPoint IP 301, 3.1.8), 0004f2004003 (SoundPoint IP 301, 3.1.8), 0004f2004004 "
        "(SoundPoint IP 301, 3.1.8) and 2 more keep the one set on the phone (456 from the factory); change "
        "it in the phone's menu or web interface\n")


def test_build_does_not_repeat_the_advice_but_refuses_a_dial_plan_conflict(inv, tmp_path):
    from .conftest import TEMPLATES

    d = inv(site__yaml=SITE.replace("  admin_password: Adm1n-pw\n", ""))
    args = ["-i", d, "-o", str(tmp_path / "out"), "-t", str(TEMPLATES), "--firmware", str(tmp_path / "fw")]
    result = CliRunner().invoke(cli, ["build", *args], catch_exceptions=False)
    assert result.exit_code == 0 and "admin_password" not in result.output
    Path(d, "extensions.yaml").write_text(EXTS + '  - {ext: "10", first_name: Lobby, secret: s3cret}\n')
    result = CliRunner().invoke(cli, ["build", *args], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: the inventory has 1 error"


# ------------------------------------------------------------------ models and firmware
CCX_NOTE = ("warning: Poly CCX 600: unverified in polygen's catalog: User-Agent family PolyCCX, User-Agent token "
            "CCX_600, master-config token CCX600, line count 16, firmware release 8.0.2, part number unknown; "
            "compare with one of your phones, then set them under models.CCX600 (ua_token, lines, firmware, "
            "part_number) to confirm")


def test_unverified_model_is_a_warning_naming_what_is_unconfirmed(inv):
    d = inv(phones__yaml='phones:\n  - {mac: 48:25:67:00:06:00, model: CCX600, lines: ["1001"]}\n')
    result = run("-i", d)
    assert (result.exit_code, result.stdout) == (0, "inv: 1 phones, 1 extensions: OK (1 warning)\n")
    assert result.stderr.splitlines() == [CCX_NOTE]
    assert run("-i", d, "--strict").exit_code == 1
    # the admin who checked them says so under models:, and the warning goes
    confirmed = inv(phones__yaml='phones:\n  - {mac: 48:25:67:00:06:00, model: CCX600, lines: ["1001"]}\n'
                                 'models:\n  CCX600: {ua_token: CCX_600, lines: 24, firmware: "8.1.3", '
                                 'part_number: 3111-00000-001}\n')
    assert (run("-i", confirmed).stderr, run("-i", confirmed, "--strict").exit_code) == ("", 0)


def test_firmware_is_checked_when_there_is_a_firmware_directory(inv):
    d = inv(phones__yaml='phones:\n  - {mac: 00:04:f2:00:04:00, model: IP4000, lines: ["1001"],'
                         ' settings: {}}\n'
                         'models:\n  IP4000: {ua_token: SSIP_4000}\n')
    assert run("-i", d).exit_code == 0  # no firmware/ here: a CI checkout of the inventory
    Path("firmware/3.1.8").mkdir(parents=True)
    Path("firmware/3.1.8/sip.ld").write_text("image")
    result = run("-i", d)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "firmware/3.1.8/sip.cfg and firmware/3.1.8/phone1.cfg not found: SoundStation IP 4000 phones run SIP "
        "3.1.8, which has no built-in defaults (Polycom's sip.cfg and phone1.cfg hold them); unpack the 3.1.8 "
        "release into firmware/3.1.8/",
        "Error: 1 problem in inv"]
    # named explicitly, a missing directory is checked too
    result = run("-i", d, "--firmware", "elsewhere")
    assert result.exit_code == 1 and "elsewhere/3.1.8/" in result.stderr
    assert "warning: firmware/3.1.8/sip.ld not found: SoundStation IP 4000 phones keep" in result.stderr
