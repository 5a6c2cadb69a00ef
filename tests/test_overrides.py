"""polygen.overrides and the phones' override files end to end: the validator, the store, what the
sidecar answers under site.overrides keep and discard, `polygen overrides`, and the boot chain
against a real sidecar (a phone changes a setting, reboots, and ends up with it or without it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from polygen import overrides
from polygen.cli import cli
from polygen.errors import PolygenError
from polygen.overrides import EMPTY, OverrideError, OverrideStore, parse, render
from polygen.sidecar import SidecarConfig, create_app
from polygen.simulate import HttpTransport, boot, local_change

from .conftest import clean_env
from .test_sidecar import MAC, MAC2, UNKNOWN, make_generation, point_out
from .test_sidecar_security import CURRENT, auth_site, basic, open_site  # noqa: F401 (fixtures)
from .test_simulate import serve, site, stop

VVX = "64167f000410"  # the example's VVX 410, which sets up.backlight.idleIntensity: "1" itself
UA_VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application"
BACKLIGHT = "up.backlight.idleIntensity"


# ---------------------------------------------------------------------------- the validator
def test_parse_reads_every_parameter_in_order():
    body = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<PHONE_CONFIG>\n'
            b'  <OVERRIDES up.backlight.idleIntensity="3" reg.1.label="Desk &amp; &quot;1&quot;"\n'
            b'    lcl.ml.lang="Fran\xc3\xa7ais"/>\n  <MORE voice.volume.persist.handset="1">text</MORE>\n'
            b"</PHONE_CONFIG>\n")
    assert parse(body) == [(BACKLIGHT, "3"), ("reg.1.label", 'Desk & "1"'), ("lcl.ml.lang", "Français"),
                           ("voice.volume.persist.handset", "1")]
    assert parse(EMPTY) == []
    assert parse("<PHONE_CONFIG><OVERRIDES a='é'/></PHONE_CONFIG>".encode("utf-16")) == [("a", "é")]


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
          b']><PHONE_CONFIG><OVERRIDES x="&b;"/></PHONE_CONFIG>')


@pytest.mark.parametrize(("body", "message"), [
    (b"", "not well-formed XML (no element found, line 1)"),
    (b"\x00\x01binary", "not well-formed XML (not well-formed (invalid token), line 1)"),
    (b"<polycomConfig a='1'/>", "the root element is <polycomConfig>, not <PHONE_CONFIG>"),
    (b"<PHONE_CONFIG a='1'/>", "<PHONE_CONFIG> carries no parameters itself; they go in <OVERRIDES .../>"),
    (b"<PHONE_CONFIG><OVERRIDES a='1'/></PHONE_CONFIG><x/>",
     "not well-formed XML (junk after document element, line 1)"),
    (LAUGHS, "document type declarations are not accepted"),
    (b'<!DOCTYPE p SYSTEM "file:///etc/passwd"><PHONE_CONFIG/>', "document type declarations are not accepted"),
    (b"<PHONE_CONFIG><OVERRIDES a='&x;'/></PHONE_CONFIG>",
     "not well-formed XML (undefined entity, line 1)"),
    (b"<PHONE_CONFIG><OVERRIDES 1a='1'/></PHONE_CONFIG>", "not well-formed XML (not well-formed (invalid token), line 1)"),
    (b"<PHONE_CONFIG><OVERRIDES x:y='1'/></PHONE_CONFIG>", "'x:y' is not a parameter name"),
    (b"<PHONE_CONFIG><OVERRIDES xmlns='http://www.w3.org/1999/xhtml'/></PHONE_CONFIG>",
     "'xmlns' is not a parameter name"),
    (b"<PHONE_CONFIG><h:script xmlns:h='http://www.w3.org/1999/xhtml'>alert(1)</h:script></PHONE_CONFIG>",
     "<h:script> is not an element of an override file"),
    ("<PHONE_CONFIG><OVERRIDES é='1'/></PHONE_CONFIG>".encode(), "'é' is not a parameter name"),
    (b"<PHONE_CONFIG><OVERRIDES " + b"a" * 256 + b"='1'/></PHONE_CONFIG>", f"{'a' * 60!r} is not a parameter name"),
    (b"<PHONE_CONFIG><OVERRIDES a='\x1b[2J'/></PHONE_CONFIG>", "not well-formed XML (not well-formed (invalid token), line 1)"),
    (b"<PHONE_CONFIG><OVERRIDES a='&#x7f;'/></PHONE_CONFIG>", "the value of a holds control characters"),
    (b"<PHONE_CONFIG><OVERRIDES " + b" ".join(b"p%d='1'" % i for i in range(2001)) + b"/></PHONE_CONFIG>",
     "an override file sets at most 2000 parameters"),
    (b"<PHONE_CONFIG>" + b" " * overrides.MAX_BYTES + b"</PHONE_CONFIG>", "an override file is at most 65536 bytes"),
])
def test_parse_refuses(body, message):
    with pytest.raises(OverrideError) as exc:
        parse(body)
    assert str(exc.value) == message


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,30}", fullmatch=True).filter(
    lambda n: not n.lower().startswith("xml"))  # reserved by XML
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f\ufffe\uffff",
                               min_codepoint=0x20) | st.sampled_from("\t\n\r"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, values, max_size=8))
def test_what_render_writes_parse_reads_back(params):
    assert parse(render(params)) == list(params.items())


# ---------------------------------------------------------------------------- the store
def test_names_come_only_from_a_mac_and_a_kind():
    assert overrides.file_name(MAC, "web") == f"{MAC}-web.cfg"
    for mac, kind in [("../../etc/x", "phone"), (MAC.upper(), "phone"), (MAC, "user"), (MAC + "/", "web"),
                      (MAC[:11], "phone"), (f"{MAC}-phone.cfg/..", "phone")]:
        with pytest.raises(ValueError):
            overrides.file_name(mac, kind)


def test_the_store_writes_atomically_and_privately(tmp_path):
    store = OverrideStore(tmp_path / "state" / "overrides")
    assert store.entries() == [] and store.read(MAC, "phone") is None
    store.prepare()
    (store.root / f".{MAC}-phone.cfg.dead.tmp").write_bytes(b"a crash left this")
    store.prepare()  # removes what a crash left behind
    first = render({BACKLIGHT: "3"})
    store.write(MAC, "phone", first)
    store.write(MAC, "phone", render({BACKLIGHT: "4"}))
    store.write(MAC2, "web", render({"reg.1.auth.password": "typed-on-the-phone"}))
    assert sorted(p.name for p in store.root.iterdir()) == [f"{MAC}-phone.cfg", f"{MAC2}-web.cfg"]
    assert store.root.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in store.root.iterdir()} == {0o600}
    assert store.read(MAC, "phone") == render({BACKLIGHT: "4"})
    (store.root / "notes.txt").write_text("not ours")
    (store.root / f"{MAC}-web.cfg").write_bytes(b"edited by hand <")
    got = [(e.mac, e.kind, e.params, e.error) for e in store.entries()]
    assert got == [(MAC, "phone", [(BACKLIGHT, "4")], None),
                   (MAC, "web", [], "not well-formed XML (syntax error, line 1)"),
                   (MAC2, "web", [("reg.1.auth.password", "typed-on-the-phone")], None)]
    assert [e.mac for e in store.entries([MAC2])] == [MAC2]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_root_writes_stays_the_sidecars(tmp_path):
    """`polygen overrides clear` run as root in the sidecar's directory: the sidecar can still read it."""
    store = OverrideStore(tmp_path / "kept")
    store.prepare()
    os.chown(store.root, 65534, 65534)
    store.write(MAC, "phone", EMPTY)
    st_ = store.path(MAC, "phone").stat()
    assert (st_.st_uid, st_.st_gid, st_.st_mode & 0o777) == (65534, 65534, 0o600)


def test_a_store_that_is_not_a_directory_says_so(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PolygenError) as exc:
        OverrideStore(tmp_path / "file").prepare()
    assert exc.value.message == (f"the overrides directory {tmp_path / 'file'} is not a directory; "
                                 "give another with --overrides-dir")


def test_policy_and_default_directory(tmp_path):
    assert overrides.read_policy(None) == overrides.read_policy(tmp_path) == "keep"  # an older build
    (tmp_path / overrides.SERVE_FILE).write_text(overrides.policy_text("discard"))
    assert overrides.read_policy(tmp_path) == "discard"
    (tmp_path / overrides.SERVE_FILE).write_text('{"overrides": "obey"}')
    assert overrides.read_policy(tmp_path) == "keep"
    assert overrides.default_dir(Path("/var/lib/polygen/logs.db")) == Path("/var/lib/polygen/polygen-overrides")
    assert overrides.default_dir("postgresql://polygen@db1/polygen") == Path("polygen-overrides")


# ---------------------------------------------------------------------------- the sidecar
def generation(base: Path, name: str, policy: str | None = None) -> Path:
    gen = make_generation(base, name)
    if policy is not None:
        (gen / overrides.SERVE_FILE).write_text(overrides.policy_text(policy))
    point_out(base, gen)
    return gen


def sidecar_config(base: Path, tmp_path: Path, **kw) -> SidecarConfig:
    kw.setdefault("miss_limit", 0)
    return SidecarConfig(out=base / "out", db=tmp_path / "logs.db", **kw)


async def test_keep_answers_the_phones_upload_back(aiohttp_client, open_site, tmp_path):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path)))
    path = f"/overrides/{MAC}-phone.cfg"
    assert (await client.get(path)).status == 404  # nothing stored yet: the usual answer
    body = render({BACKLIGHT: "3"})
    r = await client.put(path, data=body)
    assert (r.status, await r.read()) == (201, b"")
    r = await client.get(path)
    assert (r.status, await r.read(), r.headers["Cache-Control"]) == (200, body, "no-store")
    assert (r.content_type, r.headers["X-Content-Type-Options"]) == ("application/octet-stream", "nosniff")
    r = await client.head(path)
    assert (r.status, r.headers["Content-Length"]) == (200, str(len(body)))
    changed = render({BACKLIGHT: "3", "lcl.datetime.time.24HourClock": "1"})
    assert (await client.put(path, data=changed)).status == 204  # replaced
    assert await (await client.get(path)).read() == changed
    assert (await client.get(f"/overrides/{MAC}-web.cfg")).status == 404  # each kind on its own
    assert (tmp_path / "polygen-overrides" / f"{MAC}-phone.cfg").read_bytes() == changed


async def test_discard_answers_an_empty_file_and_still_keeps_the_upload(aiohttp_client, open_site, tmp_path):
    generation(open_site, "g000002", "discard")
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path)))
    path = f"/overrides/{MAC2}-web.cfg"
    r = await client.get(path)
    assert (r.status, await r.read()) == (200, EMPTY)  # also before any upload: the phone's own copy goes
    body = render({BACKLIGHT: "5"})
    assert (await client.put(path, data=body)).status == 201  # accepted, so the phone does not complain
    assert await (await client.get(path)).read() == EMPTY
    assert (tmp_path / "polygen-overrides" / f"{MAC2}-web.cfg").read_bytes() == body
    # a build that turns keep on is picked up at the next request, no restart
    generation(open_site, "g000003", "keep")
    assert await (await client.get(path)).read() == body


async def test_an_unknown_macs_override_files_are_guesses(aiohttp_client, open_site, tmp_path):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path, miss_limit=3)))
    for _ in range(5):  # a known phone without overrides asks at every boot: free
        assert (await client.get(f"/overrides/{MAC}-phone.cfg")).status == 404
        assert (await client.get(f"/overrides/{MAC}-web.cfg")).status == 404
    r = await client.put(f"/overrides/{UNKNOWN}-phone.cfg", data=EMPTY)
    assert (r.status, (await r.json())["error"]["message"]) == (404, f"unknown phone {UNKNOWN}: not in the inventory")
    assert not (tmp_path / "polygen-overrides" / f"{UNKNOWN}-phone.cfg").exists()
    unknown = [(await client.get(f"/overrides/{UNKNOWN}-{kind}.cfg")) for kind in ("phone", "web")]
    assert [(r.status, await r.json()) for r in unknown] == [
        (404, {"error": {"status": 404, "message": "not found"}})] * 2  # the same 404 as a known phone's
    assert (await client.get(f"/overrides/{MAC}-phone.cfg")).status == 429  # the guesses took the tokens


async def test_unknown_mac_accept_takes_any_phones_file(aiohttp_client, open_site, tmp_path):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path, unknown_mac="accept")))
    assert (await client.put(f"/overrides/{UNKNOWN}-phone.cfg", data=render({BACKLIGHT: "2"}))).status == 201
    assert (await client.get(f"/overrides/{UNKNOWN}-phone.cfg")).status == 200


async def test_override_uploads_share_the_phones_upload_limit(aiohttp_client, open_site, tmp_path):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path, upload_limit=2)))
    assert (await client.put(f"/logs/{MAC}-app.log", data=b"x\n")).status == 201
    assert (await client.put(f"/overrides/{MAC}-phone.cfg", data=EMPTY)).status == 201
    r = await client.put(f"/overrides/{MAC}-web.cfg", data=EMPTY)
    assert (r.status, (await r.json())["error"]["message"]) == (429, f"too many uploads for {MAC}: slow down")
    assert (await client.put(f"/overrides/{MAC2}-web.cfg", data=EMPTY)).status == 201  # another phone's own


async def test_override_files_need_the_provisioning_credentials(aiohttp_client, auth_site, tmp_path):
    client = await aiohttp_client(create_app(sidecar_config(auth_site, tmp_path)))
    path = f"/overrides/{MAC}-phone.cfg"
    assert (await client.put(path, data=EMPTY)).status == 401
    assert (await client.get(path)).status == 401
    assert (await client.put(path, data=EMPTY, headers=basic(*CURRENT))).status == 201
    assert (await client.get(path, headers=basic(*CURRENT))).status == 200


async def test_a_file_that_cannot_be_stored_is_503(aiohttp_client, open_site, tmp_path, caplog):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path)))
    shutil.rmtree(tmp_path / "polygen-overrides")  # gone under the running server
    r = await client.put(f"/overrides/{MAC}-phone.cfg", data=EMPTY)
    assert (r.status, r.headers["Retry-After"], (await r.json())["error"]["message"]) == (
        503, "30", "the override file could not be stored: try again later")
    assert f"cannot store {MAC}-phone.cfg in {tmp_path / 'polygen-overrides'}: No such file or directory" in caplog.text


async def test_a_file_that_cannot_be_read_is_503(aiohttp_client, open_site, tmp_path, caplog):
    client = await aiohttp_client(create_app(sidecar_config(open_site, tmp_path)))
    (tmp_path / "polygen-overrides" / f"{MAC}-web.cfg").mkdir()  # not a file: reading it fails
    r = await client.get(f"/overrides/{MAC}-web.cfg")
    assert (r.status, (await r.json())["error"]["message"]) == (503, "the override file cannot be read: try again later")
    assert f"cannot read {MAC}-web.cfg in {tmp_path / 'polygen-overrides'}: Is a directory" in caplog.text


def test_serve_stops_when_it_cannot_use_the_overrides_dir(tmp_path):
    from .daemons import free_port

    (tmp_path / "taken").write_text("a file")
    r = subprocess.run(
        [sys.executable, "-m", "polygen", "serve", "--port", str(free_port()), "-o", str(tmp_path / "out"),
         "--db", str(tmp_path / "logs.db"), "--overrides-dir", str(tmp_path / "taken" / "overrides")],
        cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (f"Error: cannot use the overrides directory {tmp_path}/taken/overrides: "
                                         "Not a directory; give another with --overrides-dir")
    assert "Traceback" not in r.stdout + r.stderr


# ---------------------------------------------------------------------------- the boot chain, real sidecar
@pytest.fixture
def served(tmp_path):
    """The example, built, behind a real `polygen serve` (static): the inventory, out/, the port."""
    inv, out = site(tmp_path, "srv")
    proc, port = serve(tmp_path / "srv", out, inv)
    yield inv, out, port
    stop(proc)


def simulate(port: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polygen", "simulate", "--url", f"http://127.0.0.1:{port}/",
                           "--mac", "64:16:7f:00:04:10", "--ua", UA_VVX, *extra],
                          capture_output=True, text=True, timeout=60, env=clean_env())


def overrides_cli(tmp_path: Path, *args: str):
    return CliRunner().invoke(cli, ["overrides", "--overrides-dir", str(tmp_path / "srv" / "polygen-overrides"),
                                    "-o", str(tmp_path / "srv" / "out"), *args], catch_exceptions=False)


def test_keep_a_change_on_the_phone_survives_its_reboot(served, tmp_path):
    inv, out, port = served
    phone = HttpTransport(f"http://127.0.0.1:{port}/")
    first = boot(phone, VVX, UA_VVX, firmware_required=False)
    assert first.ok, first.failures
    assert (first.params[BACKLIGHT], first.sources[BACKLIGHT]) == ("1", f"{VVX}-phone.cfg")  # the inventory's
    statuses = {(q.method, q.path): q.status for q in first.requests}
    assert statuses[("GET", f"/overrides/{VVX}-phone.cfg")] == statuses[("GET", f"/overrides/{VVX}-web.cfg")] == 404

    # the user turns the backlight up on the phone's menu: `polygen simulate --change`
    r = simulate(port, "--change", f"{BACKLIGHT}=3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (f"  PUT  /overrides/{VVX}-phone.cfg                201  override file: {BACKLIGHT}"
            in r.stdout.splitlines())

    again = boot(phone, VVX, UA_VVX, firmware_required=False)
    assert (again.params[BACKLIGHT], again.sources[BACKLIGHT]) == ("3", f"overrides/{VVX}-phone.cfg")
    assert again.overrides == {"phone": {BACKLIGHT: "3"}}
    assert [ln.address for ln in again.lines] == ["1005", "1003", "1004"]  # the rest is the inventory's

    # then in the web interface: the web file beats the phone file (docs/polycom.md §1.6)
    assert local_change(phone, again, {BACKLIGHT: "5", "reg.1.auth.password": "typed-in-the-web-ui"},
                        kind="web").status == 201
    third = boot(phone, VVX, UA_VVX, firmware_required=False)
    assert (third.params[BACKLIGHT], third.sources[BACKLIGHT]) == ("5", f"overrides/{VVX}-web.cfg")
    assert third.lines[0].password == "typed-in-the-web-ui"

    # a change of one more setting on the phone uploads its whole file again, the first change kept
    assert local_change(phone, third, {"lcl.datetime.time.24HourClock": "1"}).status == 204
    stored = overrides_cli(tmp_path)
    assert stored.exit_code == 0
    lines = stored.output.splitlines()
    assert re.fullmatch(rf"{VVX}-phone\.cfg  \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d  changed on the phone",
                        lines[0]), lines[0]
    assert lines[1:3] == [f'  {BACKLIGHT} = "3"', '  lcl.datetime.time.24HourClock = "1"']
    assert lines[3].startswith(f"{VVX}-web.cfg  ") and lines[3].endswith("  changed in its web interface")
    assert lines[4:] == [f'  {BACKLIGHT} = "5"', '  reg.1.auth.password = "********"']
    assert "typed-in-the-web-ui" not in stored.output

    # the admin drops the phone's own changes: the inventory's values come back at its next boot
    cleared = CliRunner().invoke(cli, ["overrides", "clear", "--mac", "64:16:7F:00:04:10",
                                       "--overrides-dir", str(tmp_path / "srv" / "polygen-overrides")])
    assert cleared.output.splitlines() == [f"cleared {tmp_path}/srv/polygen-overrides/{VVX}-phone.cfg",
                                           f"cleared {tmp_path}/srv/polygen-overrides/{VVX}-web.cfg"]
    after = boot(phone, VVX, UA_VVX, firmware_required=False)
    assert (after.params[BACKLIGHT], after.sources[BACKLIGHT]) == ("1", f"{VVX}-phone.cfg")
    assert after.lines[0].password == "s3cret-1005" and after.overrides == {"phone": {}, "web": {}}


def test_discard_the_inventorys_value_comes_back(served, tmp_path):
    inv, out, port = served
    site_yaml = inv / "site.yaml"
    site_yaml.write_text(site_yaml.read_text() + "  overrides: discard\n")
    r = CliRunner().invoke(cli, ["build", "-i", str(inv), "-o", str(out), "-t", str(Path(__file__).parents[1] /
                                                                                   "templates"),
                                 "--firmware", str(tmp_path / "srv" / "firmware")])
    assert r.exit_code == 0, r.output
    assert json.loads((out / overrides.SERVE_FILE).read_text()) == {"overrides": "discard", "version": 1}

    phone = HttpTransport(f"http://127.0.0.1:{port}/")
    first = boot(phone, VVX, UA_VVX, firmware_required=False)
    change = local_change(phone, first, {BACKLIGHT: "3"})
    assert (change.status, first.failures) == (201, [])  # accepted: the phone does not complain
    again = boot(phone, VVX, UA_VVX, firmware_required=False)
    assert again.ok, again.failures
    assert (again.params[BACKLIGHT], again.sources[BACKLIGHT]) == ("1", f"{VVX}-phone.cfg")
    assert again.overrides == {"phone": {}, "web": {}}  # empty override files: nothing of its own left
    assert [(q.path, q.status) for q in again.requests if "/overrides/" in q.path] == [
        (f"/overrides/{VVX}-phone.cfg", 200), (f"/overrides/{VVX}-web.cfg", 200)]

    # what the user changed is still there to see
    shown = overrides_cli(tmp_path, "--mac", VVX, "--format", "json")
    assert shown.exit_code == 0
    assert [(e["file"], e["params"]) for e in json.loads(shown.stdout)] == [(f"{VVX}-phone.cfg", {BACKLIGHT: "3"})]
    text = overrides_cli(tmp_path)
    assert text.output.splitlines()[-1] == ("note: site.overrides is discard: the phones get an empty override "
                                            "file at boot, not these")


# ---------------------------------------------------------------------------- the commands
def test_overrides_command_options(tmp_path, monkeypatch):
    store = OverrideStore(tmp_path / "kept")
    store.prepare()
    store.write(MAC, "phone", render({"device.auth.localAdminPassword": "9999", "a": "\x9b2J"}))
    monkeypatch.setenv("POLYGEN_OVERRIDES_DIR", str(tmp_path / "kept"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["overrides"])
    assert r.exit_code == 0
    assert r.output.splitlines()[1:] == ['  device.auth.localAdminPassword = "********"', '  a = "\\u009b2J"']
    assert CliRunner().invoke(cli, ["overrides", "--mac", MAC2]).output == ""
    bad = CliRunner().invoke(cli, ["overrides", "--mac", "00:04:f2"])
    assert (bad.exit_code, bad.output) == (
        1, "Error: invalid MAC address '00:04:f2': expected 12 hex digits, e.g. 0004f2abcdef\n")
    helped = CliRunner().invoke(cli, ["overrides", "--help"]).output
    assert "Example:" in helped and "POLYGEN_OVERRIDES_DIR" in helped
    assert "Example:" in CliRunner().invoke(cli, ["overrides", "clear", "--help"]).output
    # no --overrides-dir: polygen-overrides beside the SQLite database
    monkeypatch.delenv("POLYGEN_OVERRIDES_DIR")
    r = CliRunner().invoke(cli, ["overrides", "clear", "--mac", MAC, "--kind", "web", "--db",
                                 str(tmp_path / "state" / "logs.db")])
    assert r.output == f"cleared {tmp_path}/state/polygen-overrides/{MAC}-web.cfg\n"
    assert (tmp_path / "state" / "polygen-overrides" / f"{MAC}-web.cfg").read_bytes() == EMPTY


def test_simulate_change_wants_name_value():
    r = CliRunner().invoke(cli, ["simulate", "--url", "http://127.0.0.1:1/", "--mac", MAC, "--model", "VVX410",
                                 "--change", "backlight"])
    assert r.exit_code == 2
    assert "Invalid value for --change: 'backlight': expected NAME=VALUE, e.g. up.backlight.idleIntensity=3" \
        in r.output


def test_env_var_of_every_new_option():
    serve_help = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "POLYGEN_OVERRIDES_DIR" in serve_help
    assert "POLYGEN_SIMULATE_CHANGE" in CliRunner().invoke(cli, ["simulate", "--help"]).output


def test_importing_a_built_tree_names_the_policy_file_as_polygens_own(tmp_path):
    from polygen.importing.tree import _unused_reason

    assert _unused_reason(overrides.SERVE_FILE, tmp_path) == "polygen's own index; a build writes it again"
