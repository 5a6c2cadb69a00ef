"""The inventory's dial plan: the digit map the site files carry, and proof that every phone dials.

`plan_digitmap` makes the site's map: the admin's ``site.dialing.digitmap``, or one generated
from every numeric extension, ``site.dialing`` and ``site.voicemail`` (`polygen.dialplan`).
Then each distinct *effective* map is dialled with every number of the inventory: a phone's
own ``settings`` win over the site's ``settings``, which win over the map polygen writes (the
first value of a parameter wins, FACTS §1). A number sent early, changed or never sent is an
error at the line that wrote it. Non-numeric extensions are user names, not dialled from the
keypad, and are left out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polygen.dialplan import (
    DEFAULT_DIGITMAP,
    DialPlanConflict,
    DialPlanError,
    DigitMapError,
    check_extensions,
    generate_digitmap,
    parse_digitmap,
    parse_timeouts,
    sample_keys,
    timeout_list,
)
from polygen.yamlnodes import Loc, Map, Seq

if TYPE_CHECKING:  # pragma: no cover
    from polygen.inventory import Site, _Ctx, _RawExt, _RawPhone

DIGITMAP = "dialplan.digitmap"
TIMEOUT = "dialplan.digitmap.timeOut"
HANDLING = "dialplan.impossibleMatchHandling"
PARAMS = (DIGITMAP, TIMEOUT, HANDLING)
# Digits no rule can match wait for Send: never sent early (0, the firmware's default, sends
# them at once) nor refused (1), so numbers the inventory does not know still go out
IMPOSSIBLE_MATCH = "2"
_VERB = {"sent-early": "is cut short", "rewritten": "is changed", "never-sent": "is never sent"}
_CONFLICT_RE = re.compile(r"^(extension|emergency number|feature code) (\S+?)(?::| )")


@dataclass(frozen=True)
class _Number:
    """Something a user dials, and where the inventory says so."""

    label: str
    keys: str  # the keys to press
    loc: Loc
    path: str


def site_params(site: Site) -> list[tuple[str, str]]:
    """The ``dialplan.*`` parameters of the site files (the same names in both dialects)."""
    if not site.digitmap:
        return []
    return [(DIGITMAP, site.digitmap), (TIMEOUT, site.digitmap_timeout or timeout_list(site.digitmap)),
            (HANDLING, IMPOSSIBLE_MATCH)]


def _node_loc(node, *keys, default: Loc) -> Loc:
    """Where ``node[k1][k2]…`` was written (a list index is an int), or ``default``."""
    loc = default
    for k in keys:
        if isinstance(node, Map) and k in node:
            loc, node = node.locs[k], node[k]
        elif isinstance(node, Seq) and isinstance(k, int) and k < len(node):
            loc, node = node[k].loc, node[k]
        else:
            return loc
    return loc


def plan_digitmap(ctx: _Ctx, site_node: Map, site: Site, exts: dict[str, _RawExt],
                  phones: list[_RawPhone]) -> Site:
    """``site`` with the digit map polygen writes; every problem reported through ``ctx``."""
    d = site.dialing
    here = site_node.loc
    numbers = [_Number(r.ext, r.ext, r.loc, f"{r.path}.ext") for r in exts.values()
               if r.ext.isascii() and r.ext.isdigit()]
    known = {n.keys for n in numbers}
    for j, e in enumerate(d.emergency):
        numbers.append(_Number(e, e, _node_loc(site_node, "dialing", "emergency", j, default=here),
                               _list_path("site.dialing.emergency", site_node, j)))
    vm = site.voicemail
    vm_at = _node_loc(site_node, "voicemail", default=here)
    if vm and vm not in known and vm not in d.feature_codes:
        numbers.append(_Number(vm, vm, vm_at, "site.voicemail"))
    for j, c in enumerate(d.feature_codes):
        numbers.append(_Number(c, sample_keys(c), _node_loc(site_node, "dialing", "feature_codes", j, default=here),
                               _list_path("site.dialing.feature_codes", site_node, j)))

    if d.digitmap is not None:
        digitmap = d.digitmap or None
        if d.outside_prefix is not None:
            ctx.warn(_node_loc(site_node, "dialing", "outside_prefix", default=here), "site.dialing.outside_prefix",
                     "ignored: site.dialing.digitmap is used as written; give it a rule for outside "
                     f"numbers (e.g. {d.outside_prefix}xx.T)")
    else:
        digitmap = _generate(ctx, site_node, site, numbers, exts)
        if digitmap is None:  # nothing to dial, or a conflict (reported)
            return site
    site = dataclasses.replace(site, digitmap=digitmap,
                               digitmap_timeout=timeout_list(digitmap) if digitmap else None)

    # the effective parameters: polygen's, replaced by the site's settings, then by a phone's own
    settings_at = site_node.get("settings")
    site_own = {k: v for k, v in site.settings if k in PARAMS}
    if not _valid(ctx, site_own, "site", lambda k: _node_loc(settings_at, k, default=here)):
        return site
    base = {**dict(site_params(site)), **site_own}
    failing: set[int] = set()  # reported once, not again for each phone that changes only the handling
    if d.digitmap is not None or site_own:  # a generated map was proven as it was made
        named = ([] if DIGITMAP in site_own or d.digitmap is None else ["site.dialing.digitmap"]) + \
            [f"site.settings.{k}" for k in PARAMS if k in site_own]
        failing = _dial_all(ctx, numbers, base, "on every phone" + (f" ({', '.join(named)})" if named else ""))
    groups: dict[tuple, tuple[dict, list[str], list]] = {}
    for r in phones:
        own = {k: v for k, v in r.phone.settings if k in PARAMS}
        if not own or not _valid(ctx, own, r.path, lambda k, r=r: r.settings_locs.get(k, r.loc)):
            continue
        eff = {**base, **own}
        if eff != base:
            key = (tuple(sorted(eff.items())), tuple(sorted(own)))
            groups.setdefault(key, (eff, [k for k in PARAMS if k in own], []))[2].append(r)
    for eff, names, members in groups.values():
        r = members[0]
        at = f"{', '.join(names)} at {r.settings_locs.get(names[0], r.loc)}"
        if len(members) == 1:
            where = f"on phone {r.phone.mac} ({at})"
        else:
            macs = ", ".join(m.phone.mac for m in members[:3]) + (", …" if len(members) > 3 else "")
            where = f"on {len(members)} phones ({macs}; their {at} and elsewhere)"
        _dial_all(ctx, numbers, eff, where, skip=set() if DIGITMAP in names else failing)
    return site


def _list_path(prefix: str, site_node: Map, j: int) -> str:
    """``site.dialing.emergency[0]``, or without the index when a single value was written."""
    dialing = site_node.get("dialing")
    node = dialing.get(prefix.rsplit(".", 1)[1]) if isinstance(dialing, Map) else None
    return f"{prefix}[{j}]" if isinstance(node, Seq) else prefix


def _valid(ctx: _Ctx, own: dict[str, str], owner: str, loc_of) -> bool:
    """Report a digit map, timeout list or handling in ``owner``'s settings that the phone would
    not take as written."""
    ok = True
    for k, v in own.items():
        try:
            if k == DIGITMAP:
                parse_digitmap(v)
            elif k == TIMEOUT:
                parse_timeouts(v)
            elif v not in ("0", "1", "2"):
                ctx.error(loc_of(k), f"{owner}.settings.{k}", f"expected 0, 1 or 2, found '{v}'")
                ok = False
        except DigitMapError as e:
            ctx.error(loc_of(k), f"{owner}.settings.{k}", f"character {e.position + 1}: {e.reason}")
            ok = False
    return ok


def _dial_all(ctx: _Ctx, numbers: list[_Number], params: dict[str, str], where: str,
              skip: set[int] = frozenset()) -> set[int]:
    """Dial every number with these parameters; report each that fails (unless in ``skip``)."""
    digitmap = params.get(DIGITMAP, DEFAULT_DIGITMAP)
    handling = int(params.get(HANDLING, "0"))
    dm = parse_digitmap(digitmap, params.get(TIMEOUT))
    failed = set()
    for f in check_extensions(dm, [n.keys for n in numbers], handling):
        failed.add(f.index)
        if f.index in skip:
            continue
        n = numbers[f.index]
        ctx.error(n.loc, n.path, f"{n.label} {_VERB[f.verdict]} {where}: {f.message}; "
                                 f"give the digit map a rule for it (e.g. {_rule_for(n)})")
    return failed


def _rule_for(n: _Number) -> str:
    if not n.label.isdigit() or len(n.label) < 3:
        return n.label
    return n.label[0] + "x" * (len(n.label) - 1)


def generated_digitmap(site: Site, extensions) -> str:
    """The map polygen makes for ``site`` and these extensions (numeric ones are dialled);
    raises `DialPlanConflict` or `DialPlanError` when none can be made."""
    d = site.dialing
    vm = site.voicemail
    digits = [e for e in extensions if e.isascii() and e.isdigit()]
    codes = list(d.feature_codes)
    if vm and vm[0] in "*#":
        codes.append(vm)
    elif vm:
        digits.append(vm)
    return generate_digitmap(digits, emergency=d.emergency, outside_prefix=d.outside_prefix, feature_codes=codes)


def with_digitmap(site: Site, extensions) -> Site:
    """``site`` with the digit map its files carry (what `plan_digitmap` sets, unchecked)."""
    d = site.dialing
    digitmap = (d.digitmap or None) if d.digitmap is not None else (generated_digitmap(site, extensions) or None)
    return dataclasses.replace(site, digitmap=digitmap, digitmap_timeout=timeout_list(digitmap) if digitmap else None)


def _generate(ctx: _Ctx, site_node: Map, site: Site, numbers: list[_Number],
              exts: dict[str, _RawExt]) -> str | None:
    here = site_node.loc
    try:
        text = generated_digitmap(site, [n.keys for n in numbers if n.path.startswith("extensions[")])
    except DialPlanConflict as e:
        for conflict in e.conflicts:
            loc, path = _conflict_at(conflict, site_node, site, exts)
            ctx.error(loc, path, _conflict_message(conflict, numbers))
        return None
    except DialPlanError as e:
        ctx.error(_node_loc(site_node, "dialing", default=here), "site.dialing", f"{e}; write your own map "
                  "in site.dialing.digitmap")
        return None
    return text or None


def _conflict_at(conflict: str, site_node: Map, site: Site, exts: dict[str, _RawExt]) -> tuple[Loc, str]:
    """Where the number a conflict names was written."""
    here = site_node.loc
    m = _CONFLICT_RE.match(conflict)
    kind, what = m.groups() if m else ("", "")
    if kind == "extension" and what in exts:
        return exts[what].loc, f"{exts[what].path}.ext"
    if what == site.voicemail:
        return _node_loc(site_node, "voicemail", default=here), "site.voicemail"
    for key, values in (("emergency", site.dialing.emergency), ("feature_codes", site.dialing.feature_codes)):
        if kind != "extension" and what in values:
            j = values.index(what)
            return (_node_loc(site_node, "dialing", key, j, default=here),
                    _list_path(f"site.dialing.{key}", site_node, j))
    return _node_loc(site_node, "dialing", default=here), "site.dialing"


def _conflict_message(conflict: str, numbers: list[_Number]) -> str:
    """A generator's conflict, with what to do about it."""
    if "outside-line prefix" in conflict:
        return f"{conflict}; renumber the extension or change site.dialing.outside_prefix"
    if "is also the emergency number" in conflict:
        return f"{conflict}; renumber the extension"
    m = _CONFLICT_RE.match(conflict)
    what = m.group(2) if m else ""
    rest = conflict[m.end():].strip() if m else conflict
    for n in numbers:  # cut short: another number is a beginning of this one
        if n.keys != what and what.startswith(n.keys) and n.keys.isdigit():
            return (f"{what} is cut short by {n.label} ({n.loc}), which is dialled the moment it is "
                    f"complete: {rest}; renumber one of them")
    return f"{conflict}; change the number or site.dialing"
