"""What a phone has for each parameter polygen writes, when no configuration file sets it.

polygen always writes some parameters (``log.render.file``, ``prov.polling.enabled``,
``reg.N.type``, the time-zone block, …). When another system's tree did not set one, the phone
ran with the firmware's default; an import keeps that value only where it differs from what
polygen writes, and the comparison of two configurations counts an absent parameter as its
default. Only the parameters polygen writes are listed: any other parameter is compared as
present or absent.

Values: UC Software, the defaults documented in Polycom's polycomConfig.xsd (UC 4.0.15/6.3.0);
SIP 3.x, the values of Polycom's SIP 3.2.4B ``sip.cfg``/``phone1.cfg``, which those releases need
as their defaults (see plan.config_files). When the release's own ``sip.cfg``/``phone1.cfg`` are
in the firmware directory, their values come first (``release_params``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from polygen.dialplan import DEFAULT_DIGITMAP

_DST = {
    "tcpIpApp.sntp.daylightSavings.enable": "1",
    "tcpIpApp.sntp.daylightSavings.fixedDayEnable": "0",
    "tcpIpApp.sntp.daylightSavings.start.month": "3",
    "tcpIpApp.sntp.daylightSavings.start.date": "8",
    "tcpIpApp.sntp.daylightSavings.start.time": "2",
    "tcpIpApp.sntp.daylightSavings.start.dayOfWeek": "1",
    "tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth": "0",
    "tcpIpApp.sntp.daylightSavings.stop.month": "11",
    "tcpIpApp.sntp.daylightSavings.stop.date": "1",
    "tcpIpApp.sntp.daylightSavings.stop.time": "2",
    "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek": "1",
    "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek.lastInMonth": "0",
}
UC = {
    "tcpIpApp.sntp.gmtOffset": "0",
    "tcpIpApp.sntp.gmtOffset.overrideDHCP": "0",
    **_DST,
    "tcpIpApp.sntp.address": "",
    "tcpIpApp.sntp.address.overrideDHCP": "0",
    "voIpProt.server.1.address": "",
    "voIpProt.server.1.port": "0",
    "prov.polling.enabled": "0",
    "prov.polling.mode": "abs",
    "prov.polling.period": "86400",
    "prov.polling.time": "03:00",
    "prov.polling.timeRandomEnd": "",
    "log.render.file": "1",
    "log.render.file.upload.period": "86400",
    "log.render.file.upload.append": "1",
    "device.set": "0",
    "device.prov.user.set": "0",
    "device.prov.user": "",
    "device.prov.password.set": "0",
    "device.prov.password": "",
    "dir.local.readonly": "0",  # the phone lets its user edit the directory (docs/polycom.md §10)
    # the digit map and its handling (docs/polycom.md §10)
    "dialplan.digitmap": DEFAULT_DIGITMAP,
    "dialplan.digitmap.timeOut": "3|3|3|3|3|3|3",
    "dialplan.impossibleMatchHandling": "0",
    "device.auth.localAdminPassword": "456",  # the factory's (docs/polycom.md §10)
    "device.auth.localAdminPassword.set": "0",
    "lineKey.reassignment.enabled": "0",
}
SIP3 = {
    **{k: v for k, v in UC.items() if k != "prov.polling.timeRandomEnd"},  # UC only (docs/polycom.md §3)
    "tcpIpApp.sntp.gmtOffset": "",
    "voIpProt.server.1.port": "",
    "log.render.file.upload.period": "172800",
    # SIP 3.1.6 and 3.2.4B sip.cfg: the UC map without its last rule
    "dialplan.digitmap": DEFAULT_DIGITMAP.rsplit("|", 1)[0],
    "dialplan.digitmap.timeOut": "3|3|3|3|3|3",
}
# per registration N, per message-waiting line N, per busy lamp field N
LINE = {"address": "", "auth.userId": "", "auth.password": "", "displayName": "", "label": "", "type": "private",
        "server.1.address": "", "server.1.port": None}  # port: as voIpProt.server.1.port
MWI = {"subscribe": "", "callBackMode": "registration", "callBack": ""}
RESOURCE = {"address": "", "label": "", "type": "normal"}
_INDEXED_RE = re.compile(r"^(reg|msg\.mwi|attendant\.resourceList)\.([1-9][0-9]*)\.(.+)$")
_INDEXED = {"reg": LINE, "msg.mwi": MWI, "attendant.resourceList": RESOURCE}


def default(name: str, dialect: str) -> str | None:
    """The firmware's value of ``name`` when nothing sets it, or None when not listed here."""
    table = SIP3 if dialect == "sip3" else UC
    if name in table:
        return table[name]
    m = _INDEXED_RE.match(name)
    if m and m.group(3) in _INDEXED[m.group(1)]:
        v = _INDEXED[m.group(1)][m.group(3)]
        return table["voIpProt.server.1.port"] if v is None else v
    return None


def release_params(firmware: Path | None, release: str, files: list[str]) -> dict[str, str]:
    """The parameters of the release files a build appends to CONFIG_FILES (SIP 3.x ``phone1.cfg``
    and ``sip.cfg``), first value first, as the phone reads them."""
    out: dict[str, str] = {}
    if firmware is None:
        return out
    for name in files:
        path = Path(firmware) / release / name
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        for el in root.iter():
            for k, v in el.attrib.items():
                out.setdefault(k, v)
    return out
