"""polygen.useragent: every User-Agent of tests/data/user-agents.tsv, the grammar, and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polygen.useragent import UserAgent, parse_user_agent

from .conftest import sample_user_agents

# UA -> (agent, family, model, version, type, serial). Every line of tests/data/user-agents.tsv must be here,
# and every entry here must be in the file (test_every_sample_has_an_expectation).
EXPECTED = {
    "FileTransport PolycomSoundPointIP-SPIP_335-UA/3.2.1.0078": ("FileTransport", "PolycomSoundPointIP", "SPIP_335", "3.2.1.0078", None, None),
    "FileTransport PolycomSoundPointIP-SPIP_335-UA/4.2.1.0275": ("FileTransport", "PolycomSoundPointIP", "SPIP_335", "4.2.1.0275", None, None),
    "FileTransport PolycomSoundPointIP-SPIP_450-UA/3.2.3.1734": ("FileTransport", "PolycomSoundPointIP", "SPIP_450", "3.2.3.1734", None, None),
    "FileTransport PolycomSoundPointIP-SPIP_550-UA/3.2.3.1734": ("FileTransport", "PolycomSoundPointIP", "SPIP_550", "3.2.3.1734", None, None),
    "FileTransport PolycomSoundStationIP-SSIP_6000-UA/4.0.4.2906 Type/Application": ("FileTransport", "PolycomSoundStationIP", "SSIP_6000", "4.0.4.2906", "Application", None),
    "FileTransport PolycomSoundStationIP-SSIP_6000-UA/5.0.3.1667 Type/Updater": ("FileTransport", "PolycomSoundStationIP", "SSIP_6000", "5.0.3.1667", "Updater", None),
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application": ("FileTransport", "PolycomVVX", "VVX_400", "4.1.4.7430", "Application", None),
    "FileTransport PolycomVVX-VVX_101-UA/5.4.3.1014 Type/Application": ("FileTransport", "PolycomVVX", "VVX_101", "5.4.3.1014", "Application", None),
    "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater": ("FileTransport", "PolycomVVX", "VVX_500", "5.9.7.47435", "Updater", None),
    "FileTransport PolycomVVX-VVX_500-UA/5.9.7.4477 Type/Application": ("FileTransport", "PolycomVVX", "VVX_500", "5.9.7.4477", "Application", None),
    "Microbrowser/1.1 PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 Type/Application": ("Microbrowser", "PolycomSoundPointIP", "SPIP_550", "4.0.15.1047", "Application", None),
    "FileTransport PolycomSoundStationIP-SSIP_5000-UA/4.0.3.7562 Type/Application": ("FileTransport", "PolycomSoundStationIP", "SSIP_5000", "4.0.3.7562", "Application", None),
    "FileTransport PolycomSoundPointIP-SPIP_335-UA/4.2.2.0710": ("FileTransport", "PolycomSoundPointIP", "SPIP_335", "4.2.2.0710", None, None),
    "FileTransport PolycomSoundStationIP-SSIP_6000-UA/3.2.0.0157": ("FileTransport", "PolycomSoundStationIP", "SSIP_6000", "3.2.0.0157", None, None),
    "FileTransport PolycomSoundPointIP-SPIP_601-UA/3.1.3.0439": ("FileTransport", "PolycomSoundPointIP", "SPIP_601", "3.1.3.0439", None, None),
    "FileTransport PolycomVVX-VVX_450-UA/5.9.1.0615 Type/Application": ("FileTransport", "PolycomVVX", "VVX_450", "5.9.1.0615", "Application", None),
    "FileTransport PolycomVVX-VVX_310-UA/5.1.1.2986": ("FileTransport", "PolycomVVX", "VVX_310", "5.1.1.2986", None, None),
    "PolycomSoundPointIP-SPIP_430-UA/2.2.0.0047": (None, "PolycomSoundPointIP", "SPIP_430", "2.2.0.0047", None, None),
    "PolycomSoundPointIP-SPIP_650-UA/2.2.0.0047": (None, "PolycomSoundPointIP", "SPIP_650", "2.2.0.0047", None, None),
    "PolycomSoundPointIP-SPIP_670-UA/4.0.12.0926": (None, "PolycomSoundPointIP", "SPIP_670", "4.0.12.0926", None, None),
    "PolycomSoundPointIP-SPIP_335-UA/4.0.14.1388": (None, "PolycomSoundPointIP", "SPIP_335", "4.0.14.1388", None, None),
    "PolycomSoundPointIP-SPIP_450-UA/4.0.15.1047": (None, "PolycomSoundPointIP", "SPIP_450", "4.0.15.1047", None, None),
    "PolycomRealPresenceTrio-Trio_8500-UA/5.9.2.7727": (None, "PolycomRealPresenceTrio", "Trio_8500", "5.9.2.7727", None, None),
    "PolycomVVX-VVX_310-UA/4.1.4.7430_0004f2abcdef": (None, "PolycomVVX", "VVX_310", "4.1.4.7430", None, "0004f2abcdef"),
    "PolycomVVX-VVX_310-UA/5.3.0.12768": (None, "PolycomVVX", "VVX_310", "5.3.0.12768", None, None),
    "Polycom/5.5.2.8571 PolycomVVX-VVX_310-UA/5.5.2.8571": (None, "PolycomVVX", "VVX_310", "5.5.2.8571", None, None),
    "Polycom/5.4.3.2007 PolycomRealPresenceTrio-Trio_8800-UA/5.4.3.2007": (None, "PolycomRealPresenceTrio", "Trio_8800", "5.4.3.2007", None, None),
    "FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application": ("FileTransport", "PolyCCX", "CCX_600", "8.0.2.3267", "Application", "482567b5313f"),
    "PolycomRealPresenceTrio-Trio_C60-UA/7.2.2.1094": (None, "PolycomRealPresenceTrio", "Trio_C60", "7.2.2.1094", None, None),
}


def test_every_sample_has_an_expectation():
    assert sorted(sample_user_agents()) == sorted(EXPECTED)


@pytest.mark.parametrize("ua", sample_user_agents())
def test_sample_user_agents(ua):
    agent, family, model, version, type_, serial = EXPECTED[ua]
    assert parse_user_agent(ua) == UserAgent(
        agent=agent, family=family, model=model, token=model.replace("_", ""),
        version=version, serial=serial, type=type_,
    )


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        ("FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 (SN:0004F2ABCDEF) Type/Application",
         UserAgent("FileTransport", "PolycomVVX", "VVX_410", "VVX410", "5.9.7.4477", "0004f2abcdef", "Application")),
        ("  FileTransport \t PolycomVVX-VVX_410-UA/5.9.7.4477   ( SN:0004f2abcdef )   Type/Updater  ",
         UserAgent("FileTransport", "PolycomVVX", "VVX_410", "VVX410", "5.9.7.4477", "0004f2abcdef", "Updater")),
        ("FileTransport PolyEdge-Edge_E450-UA/8.0.2.1234 Type/Application",
         UserAgent("FileTransport", "PolyEdge", "Edge_E450", "EdgeE450", "8.0.2.1234", None, "Application")),
        ("FileTransport PolyCCX-CCX_500-UA/7.1.0.12345",
         UserAgent("FileTransport", "PolyCCX", "CCX_500", "CCX500", "7.1.0.12345", None, None)),
        ("FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.0.1234 (SN:64167f000001)",
         UserAgent("FileTransport", "PolycomRealPresenceTrio", "Trio_8800", "Trio8800", "7.2.0.1234", "64167f000001", None)),
    ],
)
def test_grammar_extensions(ua, expected):
    assert parse_user_agent(ua) == expected


@pytest.mark.parametrize(
    "ua",
    [
        None,
        "",
        "   ",
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "FileTransport",
        "FileTransport PolycomVVX-VVX_410-UA/",
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7",  # three fields
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.123",  # 3-digit build
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.123456",  # 6-digit build
        "FileTransport PolycomVVX-VVX410-UA/5.9.7.4477",  # no underscore in the model
        "FileTransport CiscoSPA-SPA_504-UA/5.9.7.4477",  # not a Poly family
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Bootrom",
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 (SN:0004f2abcde)",  # 11 hex digits
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 trailing garbage",
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application (SN:0004f2abcdef)",  # order
        "PolycomVVX-VVX_310-UA/4.1.4.7430_0004f2abcdef (SN:0004f2000000)",  # two different MACs
        "FileTransport PolycomVVX-VVX_410-UA/٥.٩.٧.٤٤٧٧",  # non-ASCII digits
        "FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477\nX-Injected: 1",
    ],
)
def test_not_a_polycom_user_agent(ua):
    assert parse_user_agent(ua) is None


@given(st.text())
def test_never_raises_on_text(text):
    assert parse_user_agent(text) is None or isinstance(parse_user_agent(text), UserAgent)


@given(st.binary().map(lambda b: b.decode("latin-1")))
def test_never_raises_on_header_bytes(text):
    parse_user_agent(text)


_ASCII_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
families = st.one_of(
    st.sampled_from(["PolycomSoundPointIP", "PolycomSoundStationIP", "PolycomVVX",
                     "PolycomRealPresenceTrio", "PolyEdge"]),
    st.text(_ASCII_ALNUM, max_size=12).map(lambda s: "Poly" + s),
)
models = st.builds(
    lambda head, tail, rest: f"{head}{tail}_{rest}",
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    st.text(_ASCII_ALNUM, max_size=5),
    st.text(_ASCII_ALNUM, min_size=1, max_size=6),
)
versions = st.builds(
    lambda a, b, c, d: f"{a}.{b}.{c}.{d}",
    st.integers(0, 999), st.integers(0, 999), st.integers(0, 999),
    st.from_regex(r"\A[0-9]{4,5}\Z"),
)
macs = st.from_regex(r"\A[0-9a-fA-F]{12}\Z")
spaces = st.from_regex(r"\A[ \t]{1,3}\Z")


@given(
    agent=st.sampled_from([None, "FileTransport", "Microbrowser"]),
    sip_prefix=st.booleans(),
    family=families,
    model=models,
    version=versions,
    mac=st.none() | macs,
    mac_style=st.sampled_from(["sn", "suffix"]),
    type_=st.sampled_from([None, "Application", "Updater"]),
    sep=spaces,
)
def test_round_trip(agent, sip_prefix, family, model, version, mac, mac_style, type_, sep):
    ua = ""
    if agent == "Microbrowser":
        ua += f"Microbrowser/1.1{sep}"
    elif agent:
        ua += f"{agent}{sep}"
    elif sip_prefix:
        ua += f"Polycom/{version}{sep}"
    ua += f"{family}-{model}-UA/{version}"
    if mac and mac_style == "suffix":
        ua += f"_{mac}"
    if mac and mac_style == "sn":
        ua += f"{sep}(SN:{mac})"
    if type_:
        ua += f"{sep}Type/{type_}"
    parsed = parse_user_agent(ua)
    assert parsed == UserAgent(
        agent=agent, family=family, model=model, token=model.replace("_", ""),
        version=version, serial=mac.lower() if mac else None, type=type_,
    )
    assert re.fullmatch(r"[0-9a-f]{12}", parsed.serial or "0" * 12)


# ------------------------------------------------------------------ bootstrap dispatch
@pytest.mark.parametrize(("ua", "token"), [
    ("FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application", "VVX_410"),
    ("junk FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 junk", "VVX_410"),   # junk around it
    ("filetransport polycomvvx-vvx_410-ua/5.9.7.4477", "VVX_410"),             # any case
    ("VVX_410-UA/5.9.7", "VVX_410"),                                             # at the start
    ("Poly/CCX_600-UA/7.2.0.1234", "CCX_600"),                                   # another separator
    ("PolycomVVXVVX_410-UA/5.9.7.4477", None),                                   # glued to a letter
    ("PolycomVVX-VVX_4100-UA/5.9.7.4477", None), ("PolycomVVX-VVX_410/5.9.7", None),
    ("PolycomVVX-VVX_410-UA/1 PolycomSoundPointIP-SPIP_330-UA/2", "SPIP_330"),  # sorted order decides
    ("P\u017fIP_330-UA/3.3.5", None), (None, None), ("", None),
])
def test_dispatch(ua, token):
    from polygen.useragent import dispatch

    assert dispatch(ua, ["VVX_410", "SPIP_330", "CCX_600", "bad token", "1x"]) == token


def test_dispatch_pattern_refuses_what_nginx_cannot_take():
    from polygen.useragent import dispatch_pattern

    assert dispatch_pattern("VVX_410") == "(?:^|[^A-Za-z0-9_])VVX_410-UA/"
    for bad in ('VVX"410', "VVX 410", "$x", "", "4VVX"):
        with pytest.raises(ValueError):
            dispatch_pattern(bad)
