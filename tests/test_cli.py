"""CLI behaviour of build, diff and simulate: exact messages, exit codes, env vars, help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from polygen.cli import cli

from .conftest import TEMPLATES, tree_digest


def invoke(args, env=None):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def build_args(inventory_dir, firmware_dir, tmp_path):
    return ["-i", str(inventory_dir), "-o", str(tmp_path / "out"), "-t", str(TEMPLATES),
            "--firmware", str(firmware_dir)]


def test_build_prints_a_summary_and_then_nothing_changed(inventory_dir, firmware_dir, tmp_path):
    args = build_args(inventory_dir, firmware_dir, tmp_path)
    r = invoke(["build", *args])
    assert r.exit_code == 0, r.output
    digest = tree_digest(tmp_path / "out")[:16]
    assert r.stdout == f"4 phones: 19 files written, 0 unchanged, 0 removed (generation g000001, digest {digest})\n"
    r = invoke(["build", *args])
    assert r.stdout == f"4 phones: nothing changed (19 files unchanged, generation g000001, digest {digest})\n"


def test_build_options_come_from_the_environment(inventory_dir, firmware_dir, tmp_path):
    env = {"POLYGEN_INVENTORY": str(inventory_dir), "POLYGEN_OUT": str(tmp_path / "envout"),
           "POLYGEN_TEMPLATES": str(TEMPLATES), "POLYGEN_FIRMWARE": str(firmware_dir)}
    r = invoke(["build"], env=env)
    assert r.exit_code == 0 and (tmp_path / "envout" / "ua-index.json").is_file()


def test_build_with_errors_lists_them_and_exits_1(inventory_dir, firmware_dir, tmp_path):
    (inventory_dir / "phones.yaml").write_text(
        "phones:\n  - mac: 00:04:f2:00:03:30\n    model: VVX41\n    lines: [\"1001\"]\n")
    r = invoke(["build", *build_args(inventory_dir, firmware_dir, tmp_path)])
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        f"{inventory_dir}/phones.yaml:3: phones[0].model: unknown model 'VVX41' (did you mean VVX410?); "
        "add it under models: if it is new",
        "Error: the inventory has 1 error",
    ]
    assert not (tmp_path / "out").exists()


def test_build_warns_about_missing_firmware(inventory_dir, tmp_path):
    (tmp_path / "fw").mkdir()
    r = invoke(["build", *build_args(inventory_dir, tmp_path / "fw", tmp_path)])
    assert r.exit_code == 0
    assert ("warning: firmware/5.9.7/sip.ld not found: VVX 410 phones keep the firmware they run; unpack "
            f"Polycom's 5.9.7 release into {tmp_path / 'fw'}/5.9.7/") in r.stderr.splitlines()


def test_build_with_a_broken_firmware_link_names_it_and_keeps_out(inventory_dir, firmware_dir, tmp_path):
    args = build_args(inventory_dir, firmware_dir, tmp_path)
    (firmware_dir / "9.9.9").mkdir()
    (firmware_dir / "9.9.9" / "sip.ld").symlink_to("/nonexistent/9.9.9/sip.ld")  # no phone runs 9.9.9
    r = invoke(["build", *args])
    digest = tree_digest(tmp_path / "out")[:16]
    assert (r.exit_code, r.stdout) == (0, f"4 phones: 19 files written, 0 unchanged, 0 removed (generation g000001, "
                                          f"digest {digest})\n")
    link = firmware_dir / "3.3.5" / "sip.ld"  # the IP 330 fetches it
    link.unlink()
    link.symlink_to(tmp_path / "unmounted" / "sip.ld")
    message = (f"{link}: a broken symbolic link (to {tmp_path}/unmounted/sip.ld), and phones running 3.3.5 fetch "
               "this file: point the link at it, or remove it")
    r = invoke(["build", *args])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.splitlines() == [message, "Error: the inventory has 1 error"]
    assert os.readlink(tmp_path / "out") == ".out.gens/g000001"
    # check says the same before any build is tried
    r = invoke(["check", "-i", str(inventory_dir), "--firmware", str(firmware_dir)])
    assert r.exit_code == 1 and r.stderr.splitlines()[0] == message


def test_diff_masks_secrets(inventory_dir, firmware_dir, tmp_path):
    args = build_args(inventory_dir, firmware_dir, tmp_path)
    invoke(["build", *args])
    ext = inventory_dir / "extensions.yaml"
    ext.write_text(ext.read_text().replace('secret: "s3cret-1001"', 'secret: "n3w-secret-1001"')
                   .replace("first_name: Ada", "first_name: Augusta"))
    r = invoke(["diff", *args])
    assert r.exit_code == 0
    assert "s3cret-1001" not in r.output and "n3w-secret-1001" not in r.output
    changed = [ln for ln in r.stdout.splitlines() if ln[:1] in "-+" and ln[:3] not in ("---", "+++")]
    # one attribute a line: the display name is the phone file's one changed line, the password
    # line is the same once masked
    assert '-    reg.1.displayName="Ada Lovelace"' in changed and '+    reg.1.displayName="Augusta Lovelace"' in changed
    assert '     reg.1.auth.password="********"' in r.stdout.splitlines()
    assert "+    <item><fn>Augusta</fn><ln>Lovelace</ln><ct>1001</ct></item>" in r.stdout
    assert r.stderr == "0 to add, 2 to change, 0 to remove (against generation g000001)\n"
    r = invoke(["diff", "--stat", *args])
    assert r.stdout.splitlines() == ["M contacts/000000000000-directory.xml", "M 0004f2000330-phone.cfg"]


def test_diff_masks_the_phones_admin_password(inventory_dir, firmware_dir, tmp_path):
    args = build_args(inventory_dir, firmware_dir, tmp_path)
    site = inventory_dir / "site.yaml"
    with_password = site.read_text()
    site.write_text(with_password.replace('  admin_password: "Example-admin-1"', ""))
    invoke(["build", *args])
    site.write_text(with_password)
    r = invoke(["diff", *args])
    assert "Example-admin-1" not in r.output
    assert '+    device.auth.localAdminPassword="********"' in r.stdout.splitlines()
    assert r.stderr == "0 to add, 4 to change, 0 to remove (against generation g000001)\n"  # the phones' own files only (all UC)
    r = invoke(["diff", "--stat", *args])
    assert r.stdout.splitlines() == ["M 0004f2000330-phone.cfg", "M 0004f2000331-phone.cfg",
                                     "M 0004f2005000-phone.cfg", "M 64167f000410-phone.cfg"]


def test_diff_before_any_build_lists_every_file_as_added(inventory_dir, firmware_dir, tmp_path):
    r = invoke(["diff", "--stat", *build_args(inventory_dir, firmware_dir, tmp_path)])
    assert r.exit_code == 0 and r.stderr == "19 to add, 0 to change, 0 to remove (nothing built yet)\n"
    assert not (tmp_path / "out").exists()  # diff never writes


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(command):
    r = invoke([command, "--help"])
    assert r.exit_code == 0 and "Example:" in r.output


def test_every_option_has_an_environment_variable():
    import click

    def walk(cmd, path):
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name not in ("help", "version"):
                assert p.envvar and str(p.envvar).startswith("POLYGEN_"), f"{path} --{p.name}"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(cli, "polygen")


def test_python_m_polygen_works():
    r = subprocess.run([sys.executable, "-m", "polygen", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "polygen, version 0.1.0"


def test_usage_error_exits_2():
    r = CliRunner().invoke(cli, ["build", "--no-such-option"])
    assert r.exit_code == 2


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_documented_in_the_readme(command):
    from .conftest import ROOT

    assert f"`polygen {command}`" in (ROOT / "README.md").read_text()


def test_an_internal_error_has_no_traceback_unless_verbose(inventory_dir, firmware_dir, tmp_path, monkeypatch):
    import polygen.build

    def boom(*a, **k):
        raise ValueError("something broke")

    monkeypatch.setattr(polygen.build, "run", boom)
    args = ["build", *build_args(inventory_dir, firmware_dir, tmp_path)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr == ("Error: internal error: ValueError: something broke (run with -v for the traceback, "
                        "and please report it)\n")
    r = CliRunner().invoke(cli, ["-v", *args])
    assert isinstance(r.exception, ValueError)  # -v lets it through, with its traceback


def test_diff_masks_every_credential(inventory_dir, firmware_dir, tmp_path):
    """.htpasswd lines (hashes included), the provisioning password and every parameter that holds
    a credential (key, PIN, ...) are masked, before and after, in the diff of a build."""
    site = inventory_dir / "site.yaml"

    def set_credentials(password, key, pin):
        text = site.read_text().split("  provisioning_auth:")[0]
        site.write_text(text + f"  provisioning_auth: {{user: phones-2026a, password: {password}}}\n"
                        f"  settings:\n    device.sec.configEncryption.key: {key}\n    reg.1.pin: '{pin}'\n")

    site.write_text(site.read_text().replace("  settings:\n    # raw Polycom parameters for every phone\n"
                                             '    up.headsetMode: "0"\n', ""))
    set_credentials("Old-prov-pass", "0ld-k3y-value", "97531")
    args = build_args(inventory_dir, firmware_dir, tmp_path)
    first = invoke(["diff", *args]).stdout  # every file added
    assert 'device.sec.configEncryption.key="********"' in first and 'reg.1.pin="********"' in first
    assert "+phones-2026a:********" in first
    assert invoke(["build", *args]).exit_code == 0
    old_hash = (tmp_path / "out" / ".htpasswd").read_text().split(":", 1)[1].strip()
    set_credentials("New-prov-pass", "n3w-k3y-value", "86420")
    r = invoke(["diff", *args])
    assert r.exit_code == 0
    for secret in ("Old-prov-pass", "New-prov-pass", "0ld-k3y-value", "n3w-k3y-value", "97531", "86420",
                   old_hash, "{SSHA}"):
        assert secret not in first + r.stdout, secret
    assert "M .htpasswd" in invoke(["diff", "--stat", *args]).stdout
