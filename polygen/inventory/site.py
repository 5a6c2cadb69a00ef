"""The ``site:`` and ``models:`` sections: checked once every file is read (the first ``site:``
wins, ``models:`` of every file change the catalog)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from polygen.catalog import Catalog, Model
from polygen.inventory.fields import (
    _HHMM_RE,
    _PART_RE,
    _RELEASE_RE,
    _UA_TOKEN_RE,
    _VOICEMAIL_RE,
    DIALING_KEYS,
    MAX_MWI_NUMBER,
    MODEL_KEYS,
    POLL_KEYS,
    SITE_KEYS,
    _Ctx,
    _host_port,
    _pad_hhmm,
    _suggest,
)
from polygen.inventory.model import Dialing, Polling, Site, _rules_year
from polygen.inventory.secrets import _admin_password, _auth, _Secrets
from polygen.tzrules import UnknownZone, rules_for, suggest_zone
from polygen.yamlnodes import Map, Scalar, Seq


def _site(ctx: _Ctx, m: Map, found: _Secrets | None = None, env=None) -> Site | None:
    ctx.keys(m, "site", SITE_KEYS, ("name", "provisioning_url", "sip_server", "timezone"))
    name = ctx.text(m, "name", "site", "")
    url = ctx.text(m, "provisioning_url", "site")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ftp", "ftps", "tftp") or not parts.hostname:
            ctx.error(m["provisioning_url"].loc, "site.provisioning_url",
                      f"'{url}' is not a URL the phones can use; write it as http://host/")
        elif parts.path not in ("", "/"):
            # out/ is served at the server's root by polygen serve and polygen nginx
            ctx.warn(m["provisioning_url"].loc, "site.provisioning_url",
                     f"path '{parts.path}': polygen serve and polygen nginx serve out/ at the root; "
                     "map that prefix in your web server or use http://host/")
    sip = ctx.text(m, "sip_server", "site")
    host, port = None, None
    if sip is not None:
        host, port = _host_port(sip)
        if host is None:
            ctx.error(m["sip_server"].loc, "site.sip_server",
                      f"'{sip}' is not a host name, IP address or host:port")
    tz = ctx.text(m, "timezone", "site")
    if tz is not None:
        try:
            rules_for(tz, _rules_year())
        except UnknownZone:
            s = suggest_zone(tz)
            ctx.error(m["timezone"].loc, "site.timezone",
                      f"unknown time zone '{tz}'" + (f" (did you mean {s}?)" if s else "") +
                      "; use an IANA name such as America/New_York")
            tz = None
    ntp = ctx.text(m, "ntp_server", "site")
    if ntp is not None and _host_port(ntp)[0] is None:
        ctx.error(m["ntp_server"].loc, "site.ntp_server", f"'{ntp}' is not a host name or IP address")
    polling = Polling()
    if "polling" in m and (pm := ctx.mapping(m["polling"], "site.polling")) is not None:
        ctx.keys(pm, "site.polling", POLL_KEYS)
        mode = ctx.text(pm, "mode", "site.polling", "abs")
        if mode not in ("abs", "rel", "random"):
            ctx.error(pm["mode"].loc, "site.polling.mode", f"expected abs, rel or random, found '{mode}'")
        t = ctx.text(pm, "time", "site.polling", "01:00")
        if not _HHMM_RE.fullmatch(t):
            ctx.error(pm["time"].loc, "site.polling.time", f"expected a time as \"HH:MM\", found '{t}'")
        end = ctx.text(pm, "time_random_end", "site.polling")
        if end is not None and not _HHMM_RE.fullmatch(end):
            ctx.error(pm["time_random_end"].loc, "site.polling.time_random_end",
                      f"expected a time as \"HH:MM\", found '{end}'")
        if mode == "random" and end is None:
            ctx.error(pm.loc, "site.polling", "mode random needs time_random_end (\"HH:MM\")")
        period = ctx.integer(pm, "period", "site.polling", 86400, 3600, 31536000)
        polling = Polling(mode, _pad_hhmm(t), period, _pad_hhmm(end) if end else end)
    settings, settings_locs = ctx.settings(m, "settings", "site")
    if "device.auth.localAdminPassword" in settings_locs and "provisioning_auth" not in m:
        # the site file is 0644 without provisioning auth: anyone could read the password
        ctx.error(settings_locs["device.auth.localAdminPassword"], "site.settings.device.auth.localAdminPassword",
                  "would be in the site file, which everyone may read; use site.admin_password, which "
                  "goes into each phone's private file")
    env = os.environ if env is None else env
    found = found or _Secrets()
    auth = _auth(ctx, m, found, env) if "provisioning_auth" in m else None
    dialing = _dialing(ctx, m["dialing"]) if "dialing" in m else Dialing()
    voicemail = ctx.text(m, "voicemail", "site")
    if voicemail is not None and (not _VOICEMAIL_RE.match(voicemail) or len(voicemail) > MAX_MWI_NUMBER):
        ctx.error(m["voicemail"].loc, "site.voicemail",
                  f"'{voicemail}' is not a number the phones can dial: digits, or * or # then digits "
                  f"(e.g. \"*97\", quoted), at most {MAX_MWI_NUMBER} characters")
        voicemail = None
    admin = _admin_password(ctx, m, found, env)
    overrides = ctx.text(m, "overrides", "site", "keep")
    if overrides not in ("keep", "discard"):
        ctx.error(m["overrides"].loc, "site.overrides",
                  f"expected keep (a setting changed on a phone survives its reboot) or discard "
                  f"(the inventory's value comes back), found '{overrides}'")
        overrides = "keep"
    if None in (url, host, tz):
        return None
    return Site(name, url, host, port, tz, ntp, polling, settings, auth,
                dialing=dialing, voicemail=voicemail, admin_password=admin, overrides=overrides)


def _digit_list(ctx: _Ctx, m: Map, key: str, path: str, check) -> tuple[str, ...]:
    """A list of numbers or codes (a single one is taken as a list of one)."""
    node = m.get(key)
    if node is None or (isinstance(node, Scalar) and node.is_null):
        return ()
    items = list(node) if isinstance(node, Seq) else [node]
    out = []
    for j, item in enumerate(items):
        p = f"{path}.{key}[{j}]" if isinstance(node, Seq) else f"{path}.{key}"
        if not isinstance(item, Scalar) or item.is_null:
            ctx.error(item.loc, p, "expected a number (quote it, e.g. \"911\")")
            continue
        problem = check(item.text)
        if problem:
            ctx.error(item.loc, p, problem)
            continue
        out.append(item.text)
    return tuple(out)


def _dialing(ctx: _Ctx, node) -> Dialing:
    """``site.dialing`` (see README, "Dialling"); every number is checked against the dial plan later."""
    from polygen.dialplan import DigitMapError, parse_digitmap

    p = "site.dialing"
    m = ctx.mapping(node, p)
    if m is None:
        return Dialing()
    ctx.keys(m, p, DIALING_KEYS)

    def digits(text: str) -> str | None:
        if not (text.isascii() and text.isdigit()):
            return f"'{text}' must be digits 0-9"
        return None

    def code(text: str) -> str | None:
        if text[:1] not in ("*", "#") or "|" in text:
            return f"'{text}' must be one digit-map rule starting with * or # (e.g. \"*97\" or \"*7x\"), quoted"
        try:
            parse_digitmap(text)
        except DigitMapError as e:
            return f"'{text}': {e.reason}"
        return None

    emergency = _digit_list(ctx, m, "emergency", p, digits)
    codes = _digit_list(ctx, m, "feature_codes", p, code)
    prefix = ctx.text(m, "outside_prefix", p)
    if prefix is not None and digits(prefix):
        ctx.error(m["outside_prefix"].loc, f"{p}.outside_prefix", digits(prefix) + " (e.g. \"9\")")
        prefix = None
    digitmap = ctx.text(m, "digitmap", p)
    if digitmap is not None:
        try:
            parse_digitmap(digitmap)
        except DigitMapError as e:
            ctx.error(m["digitmap"].loc, f"{p}.digitmap", f"character {e.position + 1}: {e.reason}")
            digitmap = None
    return Dialing(emergency, prefix, codes, digitmap)


def _model_overrides(ctx: _Ctx, m: Map, catalog: Catalog, file: str) -> None:
    for key, v in m.items():
        p = f"models.{key}"
        mm = ctx.mapping(v, p)
        if mm is None:
            continue
        ctx.keys(mm, p, MODEL_KEYS)
        fw = ctx.text(mm, "firmware", p)
        if fw is not None and not _RELEASE_RE.fullmatch(fw):
            ctx.error(mm["firmware"].loc, f"{p}.firmware",
                      f"'{fw}' is not a release directory name such as 5.9.7 (digits, dots, letters)")
            fw = None
        lines = ctx.integer(mm, "lines", p, None, 1, 34)
        ua = ctx.text(mm, "ua_token", p)
        if ua is not None and not _UA_TOKEN_RE.fullmatch(ua):
            ctx.error(mm["ua_token"].loc, f"{p}.ua_token", f"'{ua}' is not a User-Agent model token such as VVX_410")
            ua = None
        part = ctx.text(mm, "part_number", p)
        if part is not None and not _PART_RE.fullmatch(part):  # it names a file: <part>.sip.ld
            ctx.error(mm["part_number"].loc, f"{p}.part_number",
                      f"'{part}' is not a part number such as 3111-46162-001 (letters, digits, '-')")
            part = None
        changes = {k: v for k, v in (("firmware", fw), ("lines", lines), ("ua_token", ua),
                                     ("name", ctx.text(mm, "name", p)), ("part_number", part)) if v is not None}
        existing = catalog.find(key)
        if existing:
            catalog.replace(existing.key, **changes)
        elif {"ua_token", "lines", "firmware"} <= set(changes):
            catalog.add(Model(key=key, name=changes.get("name", key), ua_token=changes["ua_token"],
                              lines=changes["lines"], firmware=changes["firmware"],
                              part_number=changes.get("part_number", "")))
        else:
            ctx.error(mm.loc, p, f"'{key}' is not in the built-in catalog{_suggest(key, catalog.models)}; "
                                 "a new model needs ua_token, lines and firmware")
