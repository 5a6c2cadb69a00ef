"""The checks across files, once every file's own checks are done: duplicate and missing
extensions, MACs, lines on two phones, keys, the directory's size, unknown parameter names, the
firmware of each model, the message-waiting address and the admin-password advice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polygen.catalog import Catalog, Model, dialect_of
from polygen.inventory.fields import MAX_MWI_NUMBER, _Ctx, _suggest
from polygen.inventory.files import _FileResult, _PhoneRec
from polygen.inventory.model import Contact, Extension, Key, Phone, Problem, Site, mwi_address
from polygen.inventory.secrets import ADMIN_PASSWORD_ENV, SECRET_ENV_PREFIX, _env_secret_name, secret_problem
from polygen.linekeys import directory_limit, has_flexible_line_keys, has_static_blf
from polygen.yamlnodes import Loc, Map


@dataclass(slots=True)
class _RawExt:
    ext: str
    file: str
    ext_line: int
    path: str
    obj: Extension
    mailbox_line: int

    @property
    def loc(self) -> Loc:
        return Loc(self.file, self.ext_line)


@dataclass
class _RawPhone:
    phone: Phone
    loc: Loc
    path: str
    lines_loc: Loc
    settings_locs: dict
    model_loc: Loc | None = None
    keys_loc: Loc | None = None


def _check_mwi(ctx: _Ctx, site: Site, exts: dict[str, _RawExt]) -> None:
    if not site.voicemail:
        return
    for r in exts.values():
        address = mwi_address(site, r.obj.mailbox)
        if len(address) > MAX_MWI_NUMBER:
            ctx.error(Loc(r.file, r.mailbox_line), f"{r.path}.mailbox",
                      f"the message-waiting subscription '{address}' is {len(address)} characters; "
                      f"the phones take {MAX_MWI_NUMBER} (a shorter mailbox or site.sip_server)")


def _admin_advice(site_node: Map, site_at: Loc, site: Site, phones: list[_RawPhone],
                  catalog: Catalog) -> list[Problem]:
    """What `check` says about the phones' own admin password (it opens their menus and web UI)."""
    if not site.admin_password:
        return [Problem(site_at.file, site_at.line, "site.admin_password",
                        "not set: every phone keeps the admin password it left the factory with (456), which "
                        "opens its settings menu and web interface; set it here, as admin_password in the "
                        f"secrets file or in ${ADMIN_PASSWORD_ENV}",
                        "warning")]
    # device.* came with UC Software 3.3: older releases take the password from the keypad only
    old = sorted((r.phone for r in phones if catalog.models[r.phone.model].dialect != "uc"), key=lambda p: p.mac)
    if not old:
        return []
    at = site_node.locs.get("admin_password", site_at)
    named = ", ".join(f"{p.mac} ({catalog.models[p.model].name}, {catalog.models[p.model].firmware})"
                      for p in old[:5]) + (f" and {len(old) - 5} more" if len(old) > 5 else "")
    return [Problem(at.file, at.line, "site.admin_password",
                    f"SIP 3.2 and older firmware takes no admin password from its configuration: {named} "
                    f"keep{'s' if len(old) == 1 else ''} the one set on the phone (456 from the factory); "
                    "change it in the phone's menu or web interface",
                    "warning")]


def _contacts(ctx: _Ctx, checked: list[_FileResult], exts: dict[str, _RawExt]) -> tuple[Contact, ...]:
    """The directory's contact field must be unique across contacts and listed extensions (docs/polycom.md §4)."""
    seen = {r.obj.mailbox: f"extension '{r.ext}' ({Loc(r.file, r.mailbox_line)})"
            for r in exts.values() if r.obj.directory}
    out = []
    for fr in checked:
        for r in fr.contacts:
            number = r.contact.number
            if number in seen:
                ctx.error(Loc(fr.name, r.number_line), f"{r.path}.number",
                          f"directory contact '{number}' is also used by {seen[number]}; "
                          "the phone directory needs unique contacts")
                continue
            seen[number] = f"contacts ({fr.name}:{r.number_line})"
            out.append(r.contact)
    return tuple(out)


def _extensions(ctx: _Ctx, checked: list[_FileResult], file_secrets: dict[str, str],
                secret_locs: dict[str, Loc], env) -> dict[str, _RawExt]:
    out: dict[str, _RawExt] = {}
    # read the environment once: os.environ lookups encode every key, 100k times over
    env_secrets = {k: v for k, v in env.items() if k.startswith(SECRET_ENV_PREFIX) and v}
    for fr in checked:
        name = fr.name
        for r in fr.exts:
            ext, path = r.ext, r.path
            if ext in out:
                ctx.error(Loc(name, r.ext_line), f"{path}.ext",
                          f"duplicate extension '{ext}' (first at {out[ext].loc})")
                continue
            env_secret = env_secrets.get(_env_secret_name(ext)) if env_secrets else None
            if env_secret and (why := secret_problem(env_secret)):
                ctx.error(None, "", f"the password for extension '{ext}' {why}", file=f"${_env_secret_name(ext)}")
            secret = env_secret or file_secrets.get(ext) or r.inline_secret
            if not secret:
                env_name = _env_secret_name(ext)
                ctx.error(Loc(name, r.line), f"{path}.secret",
                          f"missing secret for extension '{ext}': set it here, in the secrets file "
                          f"(secrets: {{\"{ext}\": …}}) or in ${env_name}")
                secret = ""
            display = r.display or " ".join(x for x in (r.first, r.last) if x) or ext
            obj = Extension(ext, r.first, r.last, secret, r.mailbox or ext, r.directory, display, r.label or ext,
                            r.shared)
            out[ext] = _RawExt(ext, name, r.ext_line, path, obj, r.mailbox_line or r.ext_line)
    # a secret for an extension that does not exist is probably a typo
    for ext, loc in secret_locs.items():
        if ext not in out:
            ctx.warn(loc, f"secrets.{ext}", f"no extension '{ext}' in the inventory{_suggest(ext, out)}")
    # the directory's contact field must be unique (docs/polycom.md §4: ct "cannot be Null or duplicated")
    seen: dict[str, _RawExt] = {}
    for r in out.values():
        e = r.obj
        if not e.directory:
            continue
        if e.mailbox in seen:
            ctx.error(Loc(r.file, r.mailbox_line), f"{r.path}.mailbox",
                      f"directory contact '{e.mailbox}' is also used by extension '{seen[e.mailbox].ext}' "
                      f"({seen[e.mailbox].loc}); the phone directory needs unique contacts: "
                      "set another mailbox or directory: false")
        else:
            seen[e.mailbox] = r
    return out


def _phones(ctx: _Ctx, checked: list[_FileResult], exts: dict[str, _RawExt], catalog: Catalog,
            complete: bool = True) -> list[_RawPhone]:
    out: list[_RawPhone] = []
    macs: dict[str, Loc] = {}
    models: dict[str, Model | None] = {}  # a site has few distinct spellings: look each up once
    carried: dict[str, tuple[Loc, str]] = {}  # extension -> where a phone first has it as a line
    for fr in checked:
        name = fr.name
        for r in fr.phones:
            path = r.path
            mac = r.mac
            if mac is not None:
                if mac in macs:
                    ctx.error(Loc(name, r.mac_line), f"{path}.mac", f"duplicate MAC {mac} (first at {macs[mac]})")
                    mac = None
                else:
                    macs[mac] = Loc(name, r.mac_line)
            model = None
            if r.model is not None:
                if r.model not in models:
                    models[r.model] = catalog.find(r.model)
                model = models[r.model]
                if model is None:
                    s = catalog.suggest(r.model)
                    ctx.error(Loc(name, r.model_line), f"{path}.model",
                              f"unknown model '{r.model}'" + (f" (did you mean {s}?)" if s else "") +
                              "; add it under models: if it is new")
            lines: list[str] = []
            for text, line, j in r.lines:
                if text not in exts:
                    if not complete:  # it may be in the file that did not parse; no guessing
                        continue
                    ctx.error(Loc(name, line), f"{path}.lines[{j}]",
                              f"no extension '{text}' in the inventory{_suggest(text, exts)}")
                elif text in lines:
                    ctx.error(Loc(name, line), f"{path}.lines[{j}]",
                              f"extension '{text}' is on this phone twice")
                else:
                    lines.append(text)
                    if mac is not None or r.mac is None:  # a duplicate MAC is the same phone again
                        _check_carried(ctx, carried, exts[text], Loc(name, line), f"{path}.lines[{j}]",
                                       mac or path)
            keys = _phone_keys(ctx, r, name, exts, complete)
            if model is not None and keys:
                _check_key_support(ctx, r, name, keys, model)
            if model is not None and r.lines_line is not None and r.lines_len > model.lines:
                ctx.error(Loc(name, r.lines_line), f"{path}.lines",
                          f"{r.lines_len} lines, but the {model.name} supports {model.lines}")
            elif model is not None and r.keys_len and r.lines_len + r.keys_len > model.lines:
                ctx.error(Loc(name, r.keys_line), f"{path}.keys",
                          f"{r.lines_len} line{'s' if r.lines_len != 1 else ''} and {r.keys_len} "
                          f"key{'s' if r.keys_len != 1 else ''}, but the {model.name} has {model.lines} "
                          f"line key{'s' if model.lines != 1 else ''}")
            if mac and model:
                out.append(_RawPhone(Phone(mac, model.key, tuple(lines), r.settings, r.tz,
                                           tuple(k for k, _, _ in keys)), Loc(name, r.line),
                                     path, Loc(name, r.lines_line or r.line),
                                     {n: Loc(name, ln) for n, ln in r.settings_lines},
                                     Loc(name, r.model_line), Loc(name, r.keys_line) if r.keys_line else None))
    return out


def _check_carried(ctx: _Ctx, carried: dict, ext: _RawExt, loc: Loc, path: str, phone: str) -> None:
    """An extension on two phones is two private registrations on one account (each phone takes
    the other's calls) unless it is a shared line. ``phone``: its MAC, or its path if it has none."""
    first = carried.get(ext.ext)
    if first is None:
        carried[ext.ext] = (loc, phone)
    elif not ext.obj.shared:
        ctx.error(loc, path, f"extension '{ext.ext}' is also a line of phone {first[1]} ({first[0]}); "
                             f"put it on one phone, or set shared: true on the extension ({ext.loc}) "
                             "to make it a shared line")


def _phone_keys(ctx: _Ctx, r: _PhoneRec, name: str, exts: dict[str, _RawExt],
                complete: bool) -> list[tuple[Key, int, int]]:
    keys: list[tuple[Key, int, int]] = []  # (key, line, index in the YAML list)
    seen: set[tuple[str, str]] = set()
    for kind, target, label, line, j in r.keys:
        kp = f"{r.path}.keys[{j}]"
        if kind == "blf" and target not in exts:
            if complete:
                ctx.error(Loc(name, line), f"{kp}.blf",
                          f"no extension '{target}' in the inventory{_suggest(target, exts)}")
            continue
        if (kind, target) in seen:
            what = "a busy lamp field for" if kind == "blf" else "a speed dial to"
            ctx.error(Loc(name, line), kp, f"{what} '{target}' is on this phone twice")
            continue
        seen.add((kind, target))
        keys.append((Key(kind, target, label), line, j))
    return keys


def _check_key_support(ctx: _Ctx, r: _PhoneRec, name: str, keys: list[tuple[Key, int, int]], model: Model) -> None:
    """Warn about keys the phone's firmware cannot carry as given (docs/polycom.md §10)."""
    if not has_static_blf(model):
        for key, line, j in keys:
            if key.kind == "blf":
                ctx.warn(Loc(name, line), f"{r.path}.keys[{j}].blf",
                         f"busy lamp fields need SIP 3.2 or later, but the {model.name} runs {model.firmware}; "
                         "this key is not written")
    elif not has_flexible_line_keys(model):
        first_sd = next((i for i, (key, _, _) in enumerate(keys) if key.kind == "speed_dial"), len(keys))
        if any(key.kind == "blf" for key, _, _ in keys[first_sd:]):
            ctx.warn(Loc(name, r.keys_line), f"{r.path}.keys",
                     f"the {model.name} ({model.firmware}) places busy lamp fields and speed dials itself "
                     "(lineKey.* needs UC Software 4), so a speed dial before a busy lamp field may not "
                     "keep its place")


def _check_directory(ctx: _Ctx, exts: dict[str, _RawExt], contacts, phones: list[_RawPhone],
                     catalog: Catalog) -> None:
    """Warn where the company directory (and a phone's own, with its speed dials) holds more
    contacts than a model keeps (dir.local.contacts.maxNum, docs/polycom.md §10)."""
    listed = {r.obj.mailbox for r in exts.values() if r.obj.directory} | {c.number for c in contacts}
    over: dict[str, tuple[Model, int, _RawPhone]] = {}  # model key -> (model, limit, first phone)
    limits: dict[str, int] = {}
    for r in phones:
        model = catalog.models[r.phone.model]
        limit = limits.get(model.key) or limits.setdefault(model.key, directory_limit(model))
        if len(listed) > limit:
            over.setdefault(model.key, (model, limit, r))
            continue
        if not r.phone.keys:
            continue
        own = len(listed) + sum(1 for k in r.phone.keys if k.kind == "speed_dial" and k.target not in listed)
        if own > limit:
            ctx.warn(r.keys_loc, f"{r.path}.keys",
                     f"with its speed dials this phone's directory lists {own} contacts, but a {model.name} "
                     f"keeps at most {limit}; remove speed dials or set directory: false on some extensions")
    if over:
        models = ", ".join(f"{m.name} ({limit})" for m, limit, _ in over.values())
        first = next(iter(over.values()))[2]  # the first phone, in file order, of a model over
        ctx.warn(first.model_loc, f"{first.path}.model",
                 f"the company directory lists {len(listed)} contacts, more than these models keep: {models}; "
                 "set directory: false on some extensions")


def _check_models(ctx: _Ctx, phones: list[_RawPhone], catalog: Catalog, firmware) -> None:
    """Per model in use: what the catalog could not confirm, and (given a firmware directory)
    whether the files the model fetches are there (polygen.firmware)."""
    from polygen.firmware import verify

    for key in sorted({r.phone.model for r in phones}):
        model = catalog.models[key]
        note = model.unverified_note()
        if note:
            ctx.warn(None, "", note)
        if firmware is not None:
            for severity, message in verify(model, Path(firmware)):
                (ctx.warn if severity == "warning" else ctx.error)(None, "", message)


def _check_params(ctx: _Ctx, site_node, site, phones: list[_RawPhone], catalog: Catalog, firmware) -> None:
    try:
        from polygen.params import catalog_for
    except ImportError:  # pragma: no cover - the name list ships with polygen
        return

    def cat(release: str):
        d = Path(firmware) / release if firmware else None
        return catalog_for(dialect_of(release), d if d and d.is_dir() else None)

    releases = sorted({catalog.models[r.phone.model].firmware for r in phones})
    if site_node is not None and site is not None:
        sm = site_node.get("settings")
        for name, _ in site.settings:
            cats = [cat(rel) for rel in releases] or [catalog_for("uc", None)]
            if not any(c.known(name) for c in cats):
                s = cats[0].suggest(name)
                ctx.warn(sm.locs[name] if isinstance(sm, Map) else site_node.loc, f"site.settings.{name}",
                         "unknown Polycom parameter" + (f" (did you mean {s}?)" if s else ""))
    for r in phones:
        if not r.phone.settings:
            continue
        release = catalog.models[r.phone.model].firmware
        c = cat(release)
        for name, _ in r.phone.settings:
            if not c.known(name):
                s = c.suggest(name)
                ctx.warn(r.settings_locs[name], f"{r.path}.settings.{name}",
                         f"unknown to {release} firmware" + (f" (did you mean {s}?)" if s else ""))
