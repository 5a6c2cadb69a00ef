"""Parse the User-Agent strings Polycom/Poly phones send (docs/polycom.md §2).

Accepted shape (whitespace between the parts may be any run of spaces/tabs)::

    [AGENT " "] ["Polycom/" VERSION " "] FAMILY "-" MODEL "-UA/" VERSION ["_" HEX12]
        [" (SN:" HEX12 ")"] [" Type/" ("Application" | "Updater")]

    AGENT   = "FileTransport" | "Microbrowser" ["/" DIGITS *("." DIGITS)]   ; HTTP forms
    FAMILY  = "Poly" ALNUM*      ; PolycomSoundPointIP, PolycomVVX, PolycomRealPresenceTrio, PolyEdge, ...
    MODEL   = ALPHA ALNUM* "_" ALNUM+          ; SPIP_330, VVX_410, Trio_8800, Edge_E450
    VERSION = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 4*5DIGIT     ; 5.9.7.4477, 5.9.7.47435

The SIP header form has no agent and, from UC 5.4 on, a ``Polycom/<version> `` prefix; UC 4.1.4
appends ``_<mac>`` to the version. The ``Polycom/`` prefix is only accepted without an agent, the
shape every sample has. Anything else (curl, browsers, garbage) gives ``None``; the function
never raises.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["UserAgent", "dispatch", "dispatch_pattern", "parse_user_agent"]

_WS = r"[ \t]+"
_VERSION = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{4,5}"
_HEX12 = r"[0-9A-Fa-f]{12}"

_UA_RE = re.compile(
    rf"""
    (?:
        (?P<agent>FileTransport|Microbrowser)(?:/[0-9]+(?:\.[0-9]+)*)?{_WS}
      | Polycom/{_VERSION}{_WS}
    )?
    (?P<family>Poly[A-Za-z0-9]*)
    -(?P<model>[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9]+)
    -UA/(?P<version>{_VERSION})
    (?:_(?P<mac>{_HEX12}))?
    (?:{_WS}\([ \t]*SN:[ \t]*(?P<sn>{_HEX12})[ \t]*\))?
    (?:{_WS}Type/(?P<type>Application|Updater))?
    """,
    re.VERBOSE | re.ASCII,
)


@dataclass(frozen=True, slots=True)
class UserAgent:
    """What a phone's User-Agent tells about it."""

    agent: str | None  # "FileTransport", "Microbrowser", or None for the SIP header form
    family: str  # e.g. "PolycomVVX"
    model: str  # the UA model token, e.g. "VVX_410"
    token: str  # the master-config token (underscore removed), e.g. "VVX410"
    version: str  # BootROM/Updater or application version, e.g. "5.9.7.4477"
    serial: str | None  # lower-case 12-hex MAC from "(SN:...)" or a "_<mac>" suffix
    type: str | None  # "Application", "Updater" or None


def parse_user_agent(ua: str | None) -> UserAgent | None:
    """Parse a Polycom/Poly User-Agent; ``None`` for anything that does not have the shape."""
    if not isinstance(ua, str):
        return None
    m = _UA_RE.fullmatch(ua.strip(" \t"))
    if m is None:
        return None
    mac, sn = m["mac"], m["sn"]
    if mac and sn and mac.lower() != sn.lower():
        return None  # two different MACs in one UA: not a shape any phone sends
    raw_serial = sn or mac
    model = m["model"]
    return UserAgent(
        agent=m["agent"],
        family=m["family"],
        model=model,
        token=model.replace("_", ""),
        version=m["version"],
        serial=raw_serial.lower() if raw_serial else None,
        type=m["type"],
    )


# ------------------------------------------------------------------ bootstrap dispatch
# Which bootstrap a User-Agent gets. One rule, written once, that the generated nginx map and
# the sidecar apply alike (polygen.nginx, polygen.sidecar.handlers; tests/test_ua_dispatch.py runs
# both): a model's bootstrap when its UA token, followed by "-UA/", appears anywhere in the
# User-Agent, in any case, not glued to a letter, digit or "_" before it; the tokens are tried in
# sorted order (the order of the nginx map) and the first match wins; anything else gets the
# default bootstrap.
# Deliberately looser than parse_user_agent(): the bootstraps are public and the default carries
# every model's element, so a phone whose User-Agent grew a new prefix or suffix (CCX and Edge
# forms rest on few samples, docs/polycom.md §2) still gets its own. The pattern is plain enough
# to mean the same to PCRE (nginx, case-insensitive "~*", bytes) and to Python's re (ASCII).
TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)


def dispatch_pattern(ua_token: str) -> str:
    """The regular expression (PCRE and Python alike) that picks ``ua_token``'s bootstrap."""
    if not TOKEN_RE.fullmatch(ua_token):
        raise ValueError(f"invalid User-Agent model token {ua_token!r}")
    return rf"(?:^|[^A-Za-z0-9_]){ua_token}-UA/"


@functools.lru_cache(maxsize=16)
def _compiled(tokens: tuple[str, ...]) -> tuple[tuple[str, re.Pattern], ...]:
    return tuple((t, re.compile(dispatch_pattern(t), re.IGNORECASE | re.ASCII))
                 for t in tokens if TOKEN_RE.fullmatch(t))


def dispatch(user_agent: str | None, tokens) -> str | None:
    """The first of ``tokens`` (in sorted order) whose pattern the User-Agent matches, else None."""
    if not isinstance(user_agent, str):
        return None
    for token, pattern in _compiled(tuple(sorted(tokens))):
        if pattern.search(user_agent):
            return token
    return None
