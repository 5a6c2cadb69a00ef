"""Provisioning HTTP auth in the build: device.prov.* in the site files, .htpasswd with the
current and previous users (rotation with overlap), secret file modes and group."""

from __future__ import annotations

import base64
import grp
import os
import stat
import xml.etree.ElementTree as ET

import pytest

from polygen import htpasswd
from polygen.build import BuildOptions, run
from polygen.errors import InventoryError
from polygen.inventory import load
from tests.conftest import TEMPLATES

AUTH = """
  provisioning_auth:
    user: phones-2026b
    password: "new-pass"
    previous:
      - {user: phones-2026a, password: "old-pass"}
"""


@pytest.fixture
def auth_inventory(inventory_dir):
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace("  settings:\n", AUTH + "  settings:\n"))
    return inventory_dir


def test_site_files_carry_the_credentials_and_are_private(auth_inventory, firmware_dir, tmp_path):
    # a SIP 3.1.8 phone too, for the legacy site file
    (auth_inventory / "legacy.yaml").write_text('phones:\n  - {mac: 0004f2004000, model: IP4000, lines: []}\n')
    out = tmp_path / "out"
    run(BuildOptions(auth_inventory, out, TEMPLATES, firmware_dir))
    for name in ("site.cfg", "site-sip3.cfg"):
        dev = ET.fromstring((out / name).read_bytes()).find("device").attrib
        assert dev == {"device.set": "1", "device.prov.user.set": "1", "device.prov.user": "phones-2026b",
                       "device.prov.password.set": "1", "device.prov.password": "new-pass"}
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640
    users = htpasswd.parse((out / ".htpasswd").read_text())
    assert list(users) == ["phones-2026b", "phones-2026a"]
    assert htpasswd.verify(users["phones-2026b"], "new-pass")
    assert htpasswd.verify(users["phones-2026a"], "old-pass")  # still accepted during the rotation
    assert not htpasswd.verify(users["phones-2026a"], "new-pass")
    assert stat.S_IMODE((out / ".htpasswd").stat().st_mode) == 0o640


def test_check_header():
    users = htpasswd.parse(htpasswd.render([("u", "p")], "site"))
    ok = "Basic " + base64.b64encode(b"u:p").decode()
    assert htpasswd.check_header(users, ok)
    assert not htpasswd.check_header(users, "Basic " + base64.b64encode(b"u:x").decode())
    assert not htpasswd.check_header(users, "Basic !!!")
    assert not htpasswd.check_header(users, None)
    assert not htpasswd.check_header(users, "Bearer abc")


def test_htpasswd_is_deterministic():
    assert htpasswd.render([("u", "p")], "s") == htpasswd.render([("u", "p")], "s")
    assert htpasswd.render([("u", "p")], "s") != htpasswd.render([("u", "p")], "other site")


def test_rotation_must_use_a_new_user_name(inventory_dir):
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace("  settings:\n", AUTH.replace("phones-2026a", "phones-2026b")
                                             + "  settings:\n"))
    with pytest.raises(InventoryError) as exc:
        load(inventory_dir)
    assert [str(p) for p in exc.value.problems] == [
        f"{site}:13: site.provisioning_auth.previous[0].user: 'phones-2026b' is also the current user; "
        "rotate to a new user name so old and new passwords are both accepted"]


def test_password_from_the_environment_or_the_secrets_file(inventory_dir):
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace("  settings:\n", "  provisioning_auth: {user: phones}\n  settings:\n"))
    with pytest.raises(InventoryError) as exc:
        load(inventory_dir, env={})
    assert [p.message for p in exc.value.problems] == [
        "missing password: set it here, as provisioning_password in the secrets file or in "
        "$POLYGEN_PROVISIONING_PASSWORD"]
    assert load(inventory_dir, env={"POLYGEN_PROVISIONING_PASSWORD": "from-env"}).site.auth.password == "from-env"
    secrets = inventory_dir / "secrets.yaml"
    secrets.write_text('provisioning_password: "from-file"\nsecrets:\n  "1001": "x"\n')
    secrets.chmod(0o600)
    assert load(inventory_dir, env={}).site.auth.password == "from-file"


def test_secret_files_get_the_web_server_group(built_with_group):
    out, gid = built_with_group
    for p in out.glob("*-phone.cfg"):
        assert p.stat().st_gid == gid
    assert (out / "site.cfg").stat().st_gid == gid  # every file of the generation, public ones too


@pytest.fixture
def built_with_group(inventory_dir, firmware_dir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's group to another group needs root")
    name = "nogroup" if _has_group("nogroup") else "daemon"
    out = tmp_path / "out"
    run(BuildOptions(inventory_dir, out, TEMPLATES, firmware_dir, group=name))
    return out, grp.getgrnam(name).gr_gid


def _has_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_a_rotation_can_keep_every_password_in_the_secrets_file(inventory_dir):
    """Nothing secret in the (committed) inventory: current and previous passwords come from the
    git-ignored secrets file."""
    site = inventory_dir / "site.yaml"
    site.write_text(site.read_text().replace(
        "  settings:\n", "  provisioning_auth:\n    user: phones-b\n    previous: [{user: phones-a}]\n  settings:\n"))
    secrets = inventory_dir / "secrets.yaml"
    secrets.write_text('provisioning_password: "new-pass"\nprovisioning_previous:\n  phones-a: "old-pass"\n')
    secrets.chmod(0o600)
    auth = load(inventory_dir, env={}).site.auth
    assert auth.accepted() == (("phones-b", "new-pass"), ("phones-a", "old-pass"))
    secrets.write_text('provisioning_password: "new-pass"\n')
    with pytest.raises(InventoryError) as exc:
        load(inventory_dir, env={})
    assert [p.message for p in exc.value.problems] == [
        "missing password for previous user 'phones-a': set it here or under provisioning_previous: in the "
        "secrets file"]
