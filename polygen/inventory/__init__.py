"""Load and validate the inventory: ``load(directory) -> Inventory``.

Three passes, all collecting problems instead of stopping: parse every YAML file (keeping line
numbers), validate each section field by field into frozen dataclasses, then cross-check
(duplicate MACs and extensions across files, lines naming missing extensions, an extension
on two phones, keys naming missing extensions, line and key counts per model, directory size per
model, secrets). Every problem reads ``file:line: path: message``.
"""

from __future__ import annotations

import functools
import gc
import os
from pathlib import Path

from polygen.catalog import Catalog
from polygen.errors import InventoryError
from polygen.inventory.crossfile import (
    _admin_advice,
    _check_directory,
    _check_models,
    _check_mwi,
    _check_params,
    _contacts,
    _extensions,
    _phones,
    _RawExt,
    _RawPhone,
)
from polygen.inventory.fields import (
    CONTACT_KEYS,
    DIALING_KEYS,
    EXT_KEYS,
    EXT_RE,
    KEY_KINDS,
    MAX_MWI_NUMBER,
    MODEL_KEYS,
    PHONE_KEYS,
    POLL_KEYS,
    POLYCOM_OUIS,
    SITE_KEYS,
    SPEED_DIAL_KEYS,
    TOP_KEYS,
    _Ctx,
    normalise_mac,
)
from polygen.inventory.files import _checked_files, inventory_files
from polygen.inventory.model import (
    Contact,
    Dialing,
    Extension,
    Inventory,
    Key,
    Phone,
    Polling,
    Problem,
    ProvAuth,
    Site,
    _rules_year,
    mwi_address,
)
from polygen.inventory.secrets import (
    ADMIN_PASSWORD_ENV,
    MAX_ADMIN_PASSWORD,
    PROV_PASSWORD_ENV,
    SECRET_ENV_PREFIX,
    SECRETS_FILENAMES,
    _load_secrets,
    secret_problem,
    secrets_file,
)
from polygen.inventory.site import _model_overrides, _site
from polygen.yamlnodes import Loc, Map

__all__ = ["ADMIN_PASSWORD_ENV", "CONTACT_KEYS", "Contact", "DIALING_KEYS", "Dialing", "EXT_KEYS", "Extension",
           "Inventory", "KEY_KINDS", "Key", "MAX_ADMIN_PASSWORD", "MAX_MWI_NUMBER", "MODEL_KEYS", "PHONE_KEYS",
           "POLL_KEYS", "POLYCOM_OUIS", "PROV_PASSWORD_ENV", "Phone", "Polling", "Problem", "ProvAuth",
           "EXT_RE", "SECRETS_FILENAMES", "secrets_file", "SECRET_ENV_PREFIX", "SITE_KEYS", "SPEED_DIAL_KEYS", "Site", "TOP_KEYS",
           "inventory_files", "load", "mwi_address", "normalise_mac", "secret_problem",
           # for polygen.dialcheck, polygen.build and the tests
           "_Ctx", "_RawExt", "_RawPhone", "_rules_year"]


def _without_gc(fn):
    """Run ``fn`` with the cyclic garbage collector paused.

    Loading makes millions of small, acyclic objects (nodes, locations, dataclasses) that live
    until the load returns; each collection rescans all of them, which doubled the load time at
    100k phones (bench/RESULTS.md). Reference counting still frees everything; the collector
    resumes afterwards.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()
    return wrapper


@_without_gc
def load(directory: Path, secrets: Path | None = None, *, firmware: Path | None = None,
         env: dict | None = None, cache: Path | None = None) -> Inventory:
    """Read and validate every inventory file; raise InventoryError listing every problem.

    Warnings (unknown Polycom parameter names, a secrets file others can read…) do not fail the
    load; they are on ``Inventory.warnings``. ``cache``: a private directory where each file's own
    checks are kept, so that a rebuild re-reads only the files that changed.
    """
    directory = Path(directory)
    env = os.environ if env is None else env
    ctx = _Ctx()
    catalog = Catalog()
    files = inventory_files(directory)
    if not files:
        raise InventoryError(f"no *.yaml files in inventory directory '{directory}'")

    checked = _checked_files(files, cache)
    site_nodes: list[Map] = []
    site_keys: list[Loc] = []  # where each 'site:' key is, valid or not
    unparsed = any(r.unparsed for r in checked)  # cross-file references may point into such a file
    site_bad = any(r.site_bad for r in checked)
    for r in checked:
        ctx.problems.extend(r.problems)
        if r.site_line is not None:
            site_keys.append(Loc(r.name, r.site_line))
        if r.site is not None:
            site_nodes.append(r.site)
        if r.models is not None:
            _model_overrides(ctx, r.models, catalog, r.name)

    # site: exactly once
    site = None
    if not site_nodes and not site_bad and not unparsed:
        ctx.error(None, "site", "no 'site:' section in any inventory file; add one (see README)", file=str(directory))
    for extra in site_keys[1:]:
        ctx.error(extra, "site", f"'site:' is defined again (first at {site_keys[0]}); keep one")
    found = _load_secrets(ctx, directory, secrets)
    if site_nodes:
        site = _site(ctx, site_nodes[0], found, env)

    exts = _extensions(ctx, checked, found.by_ext, found.locs, env)
    phones = _phones(ctx, checked, exts, catalog, complete=not unparsed)
    contacts = _contacts(ctx, checked, exts)
    _check_directory(ctx, exts, contacts, phones, catalog)

    # raw parameter names the firmware does not know: warnings with the closest known name
    _check_params(ctx, site_nodes[0] if site_nodes else None, site, phones, catalog, firmware)
    _check_models(ctx, phones, catalog, firmware)
    advice: list[Problem] = []
    if site is not None:
        from polygen.dialcheck import plan_digitmap

        site = plan_digitmap(ctx, site_nodes[0], site, exts, phones)
        _check_mwi(ctx, site, exts)
        advice = _admin_advice(site_nodes[0], site_keys[0], site, phones, catalog)

    # report in the order of the files and lines (stable: same-line problems keep their order)
    order = {str(f): i for i, f in enumerate(files)}
    ctx.problems.sort(key=lambda p: (order.get(p.file, len(files)), p.line or 0))
    errors = [p for p in ctx.problems if p.severity == "error"]
    warnings = tuple(p for p in ctx.problems if p.severity == "warning")
    if errors or site is None:
        raise InventoryError(
            f"the inventory has {len(errors)} error{'s' if len(errors) != 1 else ''}", ctx.problems)
    extensions = {e.ext: e for e in sorted((r.obj for r in exts.values()), key=lambda e: e.ext)}
    return Inventory(site, extensions, tuple(sorted((r.phone for r in phones), key=lambda p: p.mac)),
                     catalog, warnings, tuple(str(f) for f in files), contacts,
                     tuple(advice), site_keys[0].file)
