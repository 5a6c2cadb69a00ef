"""polygen.dhcp: every snippet is checked by the real daemon's own config test.

dhcpd -t, kea-dhcp4 -t and dnsmasq --test each get a complete config around the snippet; a
deliberately broken copy must fail the same check, which proves the check reads the snippet.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from polygen.dhcp import DEFAULT_OUIS, kea_fragment, normalize_oui, render_dhcp, validate_url
from polygen.errors import PolygenError
from tests.daemons import require_binary

URL = "http://prov.example.com:8080/polycom/"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, **kw)


# ---------------------------------------------------------------- ISC dhcpd
def isc_check(tmp_path, snippet):
    dhcpd = require_binary("dhcpd")
    conf = tmp_path / "dhcpd.conf"
    # A subnet that need not exist on any interface: -t only parses.
    conf.write_text(
        "ddns-update-style none;\nauthoritative;\n"
        + snippet
        + "\nsubnet 192.0.2.0 netmask 255.255.255.0 {\n"
        "    range 192.0.2.10 192.0.2.200;\n"
        '    option tftp-server-name "tftp.example.com";\n'
        "}\n"
    )
    return run([dhcpd, "-t", "-4", "-cf", str(conf), "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid")])


def test_isc_snippet_passes_dhcpd_t(tmp_path):
    snippet = render_dhcp("isc", URL)
    result = isc_check(tmp_path, snippet)
    assert result.returncode == 0, result.stdout + result.stderr


def test_isc_check_catches_a_broken_snippet(tmp_path):
    snippet = render_dhcp("isc", URL).replace("42, a0);", "42, a0;")  # unbalanced parenthesis
    assert isc_check(tmp_path, snippet).returncode != 0


def test_isc_snippet_content():
    text = render_dhcp("isc", URL)
    assert "option polycom-boot-server code 160 = text;" in text
    for oui in DEFAULT_OUIS:
        assert f"substring(hardware, 1, 3) = {oui}" in text
    assert f'option tftp-server-name "{URL}";' in text
    assert f'option polycom-boot-server "{URL}";' in text
    # 0x42 = 66 and 0xa0 = 160 appended to the client's request list: always sent.
    assert "concat(option dhcp-parameter-request-list, 42, a0)" in text
    assert (0x42, 0xA0) == (66, 160)


# ---------------------------------------------------------------- Kea
def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def kea_check(tmp_path, fragment: dict, interfaces=("*",)):
    kea = require_binary("kea-dhcp4")
    cfg = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": list(interfaces)},
            "lease-database": {"type": "memfile", "persist": False},
            "subnet4": [{
                "id": 1,
                "subnet": "192.0.2.0/24",
                "pools": [{"pool": "192.0.2.10 - 192.0.2.200"}],
            }],
            **fragment["Dhcp4"],
        }
    }
    path = tmp_path / "kea-dhcp4.conf"
    path.write_text(json.dumps(cfg, indent=2))
    return run([kea, "-t", str(path)])


@pytest.mark.parametrize("interfaces", [("*",), ("lo",)])
def test_kea_snippet_passes_kea_t(tmp_path, interfaces):
    text = render_dhcp("kea", URL)
    assert text.startswith("// ")
    fragment = json.loads(strip_comments(text))  # what the admin pastes is valid JSON
    assert fragment == kea_fragment(URL)
    result = kea_check(tmp_path, fragment, interfaces)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kea_accepts_the_snippet_file_with_its_comments(tmp_path):
    """Kea reads JSON with // comments: the snippet is itself a loadable (partial) config."""
    kea = require_binary("kea-dhcp4")
    text = render_dhcp("kea", URL)
    # Splice the full config's other keys in after the comment header, keeping the comments.
    body = text.replace(
        '"Dhcp4": {',
        '"Dhcp4": {\n "interfaces-config": {"interfaces": ["*"]},\n'
        ' "lease-database": {"type": "memfile", "persist": false},\n'
        ' "subnet4": [{"id": 1, "subnet": "192.0.2.0/24",'
        ' "pools": [{"pool": "192.0.2.10 - 192.0.2.200"}]}],',
        1,
    )
    path = tmp_path / "kea.conf"
    path.write_text(body)
    result = run([kea, "-t", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kea_check_catches_a_broken_snippet(tmp_path):
    fragment = kea_fragment(URL)
    fragment["Dhcp4"]["client-classes"][0]["test"] = "substring(pkt4.mac,0,3) === 0x0004f2"
    assert kea_check(tmp_path, fragment).returncode != 0


def test_kea_snippet_content():
    frag = kea_fragment(URL, ["00:04:f2", "64-16-7F"])["Dhcp4"]
    assert frag["option-def"] == [
        {"name": "polycom-boot-server", "code": 160, "type": "string", "space": "dhcp4"}
    ]
    (cls,) = frag["client-classes"]
    assert cls["test"] == "substring(pkt4.mac,0,3) == 0x0004f2 or substring(pkt4.mac,0,3) == 0x64167f"
    assert [(o["code"], o["data"], o["always-send"]) for o in cls["option-data"]] == [
        (66, URL, True),
        (160, URL, True),
    ]


# ---------------------------------------------------------------- dnsmasq
def dnsmasq_check(tmp_path, snippet):
    dnsmasq = require_binary("dnsmasq")
    conf = tmp_path / "dnsmasq.conf"
    # A config of its own (never /etc/dnsmasq.conf); --test only parses.
    conf.write_text(
        "port=0\nno-resolv\nno-hosts\nbind-interfaces\ninterface=lo\n"
        f"dhcp-leasefile={tmp_path / 'leases'}\n"
        "dhcp-range=192.0.2.10,192.0.2.200,12h\n" + snippet
    )
    return run([dnsmasq, "--test", f"--conf-file={conf}"])


def test_dnsmasq_snippet_passes_dnsmasq_test(tmp_path):
    result = dnsmasq_check(tmp_path, render_dhcp("dnsmasq", URL))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syntax check OK" in result.stdout + result.stderr


def test_dnsmasq_check_catches_a_broken_snippet(tmp_path):
    snippet = render_dhcp("dnsmasq", URL).replace("dhcp-mac=set:", "dhcp-mac=sett:")
    snippet += "dhcp-option-forced=tag:polycom,66,x\n"
    assert dnsmasq_check(tmp_path, snippet).returncode != 0


def test_dnsmasq_snippet_content():
    text = render_dhcp("dnsmasq", URL, ["48:25:67"])
    assert "dhcp-mac=set:polycom,48:25:67:*:*:*\n" in text
    assert f'dhcp-option-force=tag:polycom,66,"{URL}"\n' in text
    assert f'dhcp-option-force=tag:polycom,160,"{URL}"\n' in text
    assert "00:04:f2" not in text.split("\n\n", 1)[1]


# ---------------------------------------------------------------- common behaviour
@pytest.mark.parametrize("fmt, comment", [("isc", "#"), ("kea", "//"), ("dnsmasq", "#")])
def test_header_says_what_where_and_who(fmt, comment):
    text = render_dhcp(fmt, URL)
    header = [line for line in text.splitlines() if line.startswith(comment)]
    joined = "\n".join(header)
    assert text.startswith(f"{comment} polygen ")
    assert "Generated by `polygen dhcp`" in joined
    assert "option 66" in joined and "option 160" in joined
    where = {"isc": "/etc/dhcp/dhcpd.conf", "kea": "/etc/kea/kea-dhcp4.conf", "dnsmasq": "/etc/dnsmasq.d/"}
    assert where[fmt] in joined


@pytest.mark.parametrize("url", [
    "http://192.0.2.1/",
    "https://user:pass@prov.example.com/p/",
    "ftp://prov.example.com",
    "tftp://192.0.2.1",
    "HTTP://[2001:db8::1]:8080/x",
])
def test_valid_urls(url):
    assert validate_url(url) == url


@pytest.mark.parametrize("url, message", [
    ("", "provisioning URL is empty"),
    ("prov.example.com", "the scheme must be one of http, https, ftp, ftps, tftp"),
    ("gopher://x/", "the scheme must be one of"),
    ("http:///path", "no host"),
    ('http://x/"; evil', "must not contain spaces, quotes"),
    ("http://x/a b", "must not contain spaces"),
    ("http://x:99999/", "Port out of range"),
    ("http://x/" + "a" * 300, "longer than 255 bytes"),
])
def test_invalid_urls(url, message):
    with pytest.raises(PolygenError, match=re.escape(message)):
        render_dhcp("isc", url)


@pytest.mark.parametrize("oui, norm", [("00:04:f2", "00:04:f2"), ("00-04-F2", "00:04:f2"), ("64167f", "64:16:7f")])
def test_oui_normalised(oui, norm):
    assert normalize_oui(oui) == norm


@pytest.mark.parametrize("oui", ["00:04", "00:04:f2:01", "zz:04:f2", "", "00:04:f2*"])
def test_invalid_oui(oui):
    with pytest.raises(PolygenError, match=re.escape(f"invalid OUI {oui!r}: expected three hex octets such as 00:04:f2")):
        render_dhcp("dnsmasq", URL, [oui])


def test_no_oui_and_duplicates():
    with pytest.raises(PolygenError, match="no OUI given"):
        render_dhcp("isc", URL, [])
    assert render_dhcp("dnsmasq", URL, ["00:04:f2", "0004F2"]).count("dhcp-mac=") == 1


def test_unknown_format():
    with pytest.raises(PolygenError, match=re.escape("unknown DHCP server format 'dhcpcd' (known: isc, kea, dnsmasq)")):
        render_dhcp("dhcpcd", URL)


# ---------------------------------------------------------------- CLI
def test_cli_help():
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(cli, ["dhcp", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "POLYGEN_DHCP_FORMAT" in result.output


def test_cli_url_from_inventory(tmp_path):
    from click.testing import CliRunner

    from polygen.cli import cli
    from polygen.inventory import load

    inventory = Path(__file__).resolve().parent.parent / "inventory"
    expected = render_dhcp("dnsmasq", load(inventory).site.provisioning_url)
    result = CliRunner().invoke(cli, ["dhcp", "--format", "dnsmasq", "-i", str(inventory)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == expected


def test_cli_url_and_ouis_from_options(tmp_path):
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(
        cli, ["dhcp", "--format", "isc", "--url", URL, "--oui", "00-04-F2", "-i", str(tmp_path / "none")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output == render_dhcp("isc", URL, ["00:04:f2"])
    assert isc_check(tmp_path, result.output).returncode == 0


def test_cli_env(tmp_path):
    from click.testing import CliRunner

    from polygen.cli import cli

    env = {"POLYGEN_DHCP_FORMAT": "kea", "POLYGEN_PROVISIONING_URL": URL, "POLYGEN_DHCP_OUI": "00:04:f2 64:16:7f"}
    result = CliRunner().invoke(cli, ["dhcp"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == render_dhcp("kea", URL, ["00:04:f2", "64:16:7f"])


@pytest.mark.parametrize("args, error", [
    (["--url", "prov.example.com"],
     "Error: invalid provisioning URL 'prov.example.com': the scheme must be one of http, https, ftp, ftps, tftp"),
    (["--url", URL, "--oui", "00:04"], "Error: invalid OUI '00:04': expected three hex octets such as 00:04:f2"),
])
def test_cli_errors(args, error):
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(cli, ["dhcp", "--format", "isc", *args])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == error


def test_cli_missing_inventory(tmp_path):
    from click.testing import CliRunner

    from polygen.cli import cli

    result = CliRunner().invoke(cli, ["dhcp", "--format", "isc", "-i", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: inventory directory")


# ---------------------------------------------------------------- a real DHCP exchange
# -t proves the syntax; this proves the quirks: a phone that does not ask for 66/160 in its
# parameter request list still gets both, and other devices do not get 160.
PHONE_MAC = "00:04:f2:12:34:56"
OTHER_MAC = "02:00:00:12:34:56"


def _server_argv(fmt: str, link, tmp_path: Path) -> tuple[list[str], dict]:
    snippet = render_dhcp(fmt, URL)
    env = dict(os.environ)
    if fmt == "isc":
        conf = tmp_path / "dhcpd.conf"
        conf.write_text(
            "ddns-update-style none;\nauthoritative;\n" + snippet
            + "subnet 192.0.2.0 netmask 255.255.255.0 {\n  range 192.0.2.10 192.0.2.200;\n"
            '  option tftp-server-name "tftp.example.com";\n}\n'
        )
        (tmp_path / "leases").touch()
        argv = [require_binary("dhcpd"), "-f", "-d", "-4", "-cf", str(conf), "-lf", str(tmp_path / "leases"),
                "-pf", str(tmp_path / "pid"), link.server_if]
    elif fmt == "kea":
        cfg = {"Dhcp4": {
            "interfaces-config": {"interfaces": [link.server_if], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": False},
            "subnet4": [{"id": 1, "subnet": "192.0.2.0/24", "pools": [{"pool": "192.0.2.10 - 192.0.2.200"}]}],
            **kea_fragment(URL)["Dhcp4"],
        }}
        conf = tmp_path / "kea.json"
        conf.write_text(json.dumps(cfg))
        env.update(KEA_PIDFILE_DIR=str(tmp_path), KEA_LOCKFILE_DIR=str(tmp_path))
        argv = [require_binary("kea-dhcp4"), "-c", str(conf)]
    else:
        conf = tmp_path / "dnsmasq.conf"
        conf.write_text(
            f"port=0\nno-resolv\nno-hosts\nuser=root\ninterface={link.server_if}\nbind-interfaces\n"
            f"dhcp-range=192.0.2.10,192.0.2.200,1h\ndhcp-leasefile={tmp_path / 'leases'}\n"
            f"pid-file={tmp_path / 'pid'}\n" + snippet
        )
        argv = [require_binary("dnsmasq"), "--no-daemon", f"--conf-file={conf}"]
    return argv, env


def _probe(link, mac: str) -> dict[int, bytes]:
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); import tests.daemons as d; d.main_probe()"
    result = subprocess.run(
        link.exec_in(link.client, [sys.executable, "-c", code, str(Path(__file__).parent.parent),
                                   link.client_if, mac]),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return {int(k): bytes.fromhex(v) for k, v in json.loads(result.stdout).items()}


@pytest.mark.parametrize("fmt", ["isc", "kea", "dnsmasq"])
def test_real_exchange_sends_66_and_160_unrequested(fmt, tmp_path):
    from tests.daemons import VethLink

    require_binary({"isc": "dhcpd", "kea": "kea-dhcp4", "dnsmasq": "dnsmasq"}[fmt])
    link = VethLink.create()
    proc = None
    try:
        argv, env = _server_argv(fmt, link, tmp_path)
        with (tmp_path / "server.log").open("w") as log:
            proc = subprocess.Popen(link.exec_in(link.server, argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            phone = _probe(link, PHONE_MAC)
            other = _probe(link, OTHER_MAC)
        except AssertionError:
            raise AssertionError((tmp_path / "server.log").read_text()) from None
        # RFC 2132 §2: receivers must accept a trailing NUL on text options (some servers add one).
        assert phone[66].rstrip(b"\0") == URL.encode(), phone
        assert phone[160].rstrip(b"\0") == URL.encode(), phone
        assert 160 not in other, other
        assert other.get(66, b"").rstrip(b"\0") != URL.encode(), other
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        link.destroy()
