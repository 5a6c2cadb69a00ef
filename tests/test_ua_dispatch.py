"""nginx and the sidecar choose the same bootstrap for every User-Agent.

One build holds a phone of every catalog model; the real nginx runs the config `polygen nginx`
generates for it and the real sidecar serves the same out/. Every sample User-Agent
(tests/data/user-agents.tsv) and hostile variants of each (junk before and after, case,
Microbrowser and SIP forms, glued or truncated tokens, non-ASCII) go to both: the answers must be
byte for byte the same, and a phone's User-Agent must get its own model's bootstrap.
"""

from __future__ import annotations

import http.client

import pytest

from polygen.build import BuildOptions, run
from polygen.catalog import BUILTIN

from .conftest import TEMPLATES, make_firmware, sample_user_agents
from .test_nginx import RealSidecar, start_nginx


def build_every_model(tmp_path):
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "site.yaml").write_text("site:\n  name: Dispatch\n  provisioning_url: http://prov.example.com/\n"
                                   "  sip_server: pbx.example.com\n  timezone: UTC\n")
    exts = "".join(f'  - {{ext: "{1000 + i}", first_name: P{i}, secret: s3cret-{i}}}\n' for i in range(len(BUILTIN)))
    phones = "".join(f'  - {{mac: "0004f2{i:06x}", model: {m.key}, lines: ["{1000 + i}"]}}\n'
                     for i, m in enumerate(BUILTIN))
    (inv / "extensions.yaml").write_text("extensions:\n" + exts)
    (inv / "phones.yaml").write_text("phones:\n" + phones)
    fw = make_firmware(tmp_path / "fw", releases=tuple(sorted({m.firmware for m in BUILTIN})))
    out = tmp_path / "out"
    run(BuildOptions(inv, out, TEMPLATES, fw))
    return out


def variants(ua: str) -> list[str]:
    sip = ua.removeprefix("FileTransport ").removeprefix("Microbrowser/1.1 ")
    return [
        ua,
        "xx" + ua, "junk " + ua, ua + " junk", ua + "x", "  " + ua + "\t",   # junk before and after
        ua.upper(), ua.lower(), ua.swapcase(),                                 # case
        "Microbrowser/1.1 " + sip, sip, "Polycom/5.9.7.4477 " + sip,           # other forms
        sip.replace("-", "", 1),                                               # token glued to the family
        sip.replace("-UA/", "/"), sip.replace("-UA/", "-UA"),                  # truncated
        sip.replace("_", "-"), sip.replace("S", "\u017f"),                     # look-alikes (long s)
        "é " + ua, ua.replace(" ", "\t"),
    ]


def get(port: int, ua: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/000000000000.cfg", skip_accept_encoding=True)
        if ua is not None:
            conn.putheader("User-Agent", ua.encode("utf-8"))
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def servers(tmp_path):
    out = build_every_model(tmp_path)
    sidecar = RealSidecar(out, tmp_path / "logs.db", miss_limit=0).start()
    try:
        nginx = start_nginx(tmp_path, out, sidecar=f"127.0.0.1:{sidecar.port}")
        try:
            yield out, nginx.port, sidecar.port
        finally:
            nginx.stop()
    finally:
        sidecar.stop()


def test_nginx_and_sidecar_give_the_same_bootstrap_for_every_user_agent(servers):
    out, nginx_port, sidecar_port = servers
    bootstrap = {m.ua_token: (out / f"bootstrap/{m.token}.cfg").read_bytes() for m in BUILTIN}
    default = (out / "000000000000.cfg").read_bytes()
    samples = sample_user_agents() + [m.user_agent for m in BUILTIN]
    uas = list(dict.fromkeys(v for ua in samples for v in variants(ua))) + [
        None, "", "curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "-UA/", "x" * 4000 + " " + samples[0],
        "PolycomVVX-VVX_410-UA/5.9.7 PolycomSoundPointIP-SPIP_330-UA/3.3.5",  # two tokens: the first sorted
    ]
    answers = {}
    for ua in uas:
        via_nginx, via_sidecar = get(nginx_port, ua), get(sidecar_port, ua)
        assert via_nginx == via_sidecar, f"User-Agent {ua!r}"
        assert via_nginx[0] == 200, ua
        answers[ua] = via_nginx[1]
    # not both wrong alike: every phone's own User-Agent gets its model's bootstrap, junk the default
    for m in BUILTIN:
        assert answers[m.user_agent] == bootstrap[m.ua_token], m.key
    assert answers["FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application"] \
        == bootstrap["CCX_600"]
    assert answers["PolycomRealPresenceTrio-Trio_C60-UA/7.2.2.1094"] == bootstrap["Trio_C60"]
    assert answers["PolycomVVX-VVX_410-UA/5.9.7 PolycomSoundPointIP-SPIP_330-UA/3.3.5"] == bootstrap["SPIP_330"]
    for ua in (None, "", "curl/8.5.0", "PolycomVVXVVX_410-UA/5.9.7.0000 Type/Application"):
        assert answers[ua] == default, ua
    assert sum(a != default for a in answers.values()) > len(answers) // 2
