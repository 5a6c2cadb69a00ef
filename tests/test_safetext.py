"""polygen.safetext: control characters made visible, credentials masked, and the commands that
print text a phone (or a server) sent: `polygen logs` (text and JSON, in a pipe and on a
terminal), the serve log lines, `polygen simulate`'s report, `polygen diff`."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.logstore import LogStore
from polygen.safetext import MASK, is_credential, json_dumps, mask, visible

# Every kind of control a terminal obeys: CR (rewrite the line), ESC with CSI (clear screen) and
# OSC (set the title / hyperlink), BEL, BS, VT, FF, another C0, DEL, C1 CSI and OSC, and a
# bidirectional override that reorders what follows.
NASTY = "ok\r\x1b[2J\x1b]0;owned\x07\x08\x0b\x0c\x01\x7f\x9b31m\x9d0;t\x9c\u202eevil"
SHOWN = r"ok\r\e[2J\e]0;owned\x07\x08\x0b\x0c\x01\x7f\x9b31m\x9d0;t\x9c\u202eevil"
CONTROLS = set(range(0x00, 0x20)) | set(range(0x7F, 0xA0)) | {0x202E}
MAC = "0004f2abcdef"


def controls_in(text: str) -> list[str]:
    return [hex(ord(c)) for c in text if ord(c) in CONTROLS and c != "\n"]


def test_visible():
    assert visible(NASTY) == SHOWN
    assert controls_in(visible("".join(map(chr, CONTROLS - {0x0A})))) == []
    assert visible("tab\tand caf\u00e9 \u4e2d") == "tab\\tand caf\u00e9 \u4e2d"  # text stays readable
    assert visible("a\nb") == "a\nb" and visible("a\nb", newlines=True) == "a\\nb"


def test_json_dumps_escapes_c1_del_and_bidi_too():
    out = json_dumps({"t": NASTY})
    assert controls_in(out) == []
    assert json.loads(out) == {"t": NASTY}  # still the same text once decoded
    assert "\\u009b" in out and "\\u007f" in out and "\\u202e" in out
    assert "\\u009b" not in json.dumps({"t": NASTY}, ensure_ascii=False)  # what plain json.dumps misses


@pytest.mark.parametrize("name", [
    "reg.1.auth.password", "reg.34.auth.password", "device.prov.password", "device.auth.localAdminPassword",
    "device.net.dot1x.password", "dir.corp.password", "reg.1.server.1.pstnServerAuth.password", "reg.1.pin",
    "device.sec.configEncryption.key", "sec.uploadDevice.privateKey", "prov.login.localPassword.hashed",
    "device.wifi.psk", "apps.push.password", "secret", "PASSWORD"])
def test_credential_names(name):
    assert is_credential(name)


@pytest.mark.parametrize("name", [
    "reg.1.auth.userId", "device.prov.password.set", "device.prov.user", "up.echoPasswordDigits",
    "sec.pwd.length.admin", "sec.srtp.key.lifetime", "log.level.change.key", "prov.loginCredPwdFlushed.enabled",
    "key.1.function.prim", "reg.1.displayName"])
def test_not_credential_names(name):
    assert not is_credential(name)


def test_mask():
    xml = ('<reg reg.1.auth.password="hunter2" reg.1.auth.password.set="1" reg.1.pin="4321" '
           'device.sec.configEncryption.key="k3y" reg.1.label="Ada"/>')
    assert mask(xml) == (f'<reg reg.1.auth.password="{MASK}" reg.1.auth.password.set="1" reg.1.pin="{MASK}" '
                         f'device.sec.configEncryption.key="{MASK}" reg.1.label="Ada"/>')
    assert mask("login failed: password=hunter2, user=ada") == f"login failed: password={MASK}, user=ada"
    assert mask("the secret is s3cret-1001!", {"s3cret-1001", "ab"}) == f"the secret is {MASK}!"
    htpasswd = "phones-2026b:{SSHA}cX3f9Zx0GqW1b0bL7mJb8w==\nphones-2026a:$apr1$x$y\n"
    assert mask(htpasswd, htpasswd=True) == f"phones-2026b:{MASK}\nphones-2026a:{MASK}\n"


# ---------------------------------------------------------------------------- polygen logs
@pytest.fixture
def db(tmp_path):
    path = tmp_path / "logs.db"
    with LogStore.open(path) as store:
        store.store_upload(MAC, "app", f"1101103000|sip  |4|03|{NASTY}\nraw {NASTY} password=hunter2\n".encode(),
                           "5.9.7", None, received_at=1_800_000_000)
    return path


def test_logs_text_in_a_pipe_shows_controls_as_escapes(db):
    out = CliRunner().invoke(cli, ["logs", "--db", str(db)], catch_exceptions=False).output
    assert controls_in(out) == []
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f"app:1 L4 sip   1101103000 {SHOWN}")
    assert lines[1].endswith(f"app:2 -  -     -          raw {SHOWN} password={MASK}")


def test_logs_json_escapes_every_control(db):
    out = CliRunner().invoke(cli, ["logs", "--db", str(db), "--format", "json"], catch_exceptions=False).output
    assert controls_in(out) == []
    rows = json.loads(out)
    assert [r["text"] for r in rows] == [NASTY, f"raw {NASTY} password={MASK}"]


def test_logs_on_a_terminal_shows_controls_as_escapes(db):
    """The same on a real terminal (a pseudo-terminal): nothing the phone sent reaches it raw."""
    from tests.test_progress import run_on_a_terminal

    text = run_on_a_terminal([sys.executable, "-m", "polygen", "logs", "--db", str(db)]).replace("\r\n", "\n")
    assert SHOWN in text
    assert controls_in(text) == []


# ---------------------------------------------------------------------------- serve, simulate
def test_serve_log_values_escape_c1_and_del():
    from polygen.sidecar.accesslog import kv

    assert kv("FileTransport \x9b2J\x7f\x1b") == '"FileTransport \\u009b2J\\u007f\\u001b"'
    assert kv("plain-token/1.0") == "plain-token/1.0"


def test_simulate_report_shows_what_the_server_sent_as_escapes():
    from polygen.simulate import BootReport, Line, Request, format_report

    r = BootReport(mac=MAC, user_agent="UA")
    r.requests.append(Request("GET", "/x\x1b[2J.cfg", 200, 1, "master"))
    r.lines.append(Line(1, "1001", "1001", "pw-1001", f"Ada {NASTY}", "1001\r", "pbx\x07"))
    r.failures.append(f"site.cfg is not well-formed XML: {NASTY}")
    out = format_report(r)
    assert controls_in(out) == []
    assert f"Ada {SHOWN}" in out and "label 1001\\r" in out and "via pbx\\x07" in out
    assert "pw-1001" not in out
