"""``run(BuildOptions) -> BuildResult``: load, plan, write. Used by the CLI, watch, serve and bench."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from polygen.errors import BuildError
from polygen.inventory import Inventory, load
from polygen.plan import Plan, plan
from polygen.render import Renderer
from polygen.write import WriteResult, current_generation, read_manifest, write

log = logging.getLogger("polygen.build")


@dataclass(frozen=True)
class BuildOptions:
    inventory: Path
    out: Path
    templates: Path
    firmware: Path
    secrets: Path | None = None
    group: str | None = None  # group of the files holding secrets (0640), e.g. www-data


@dataclass(frozen=True)
class BuildResult:
    phones: int
    written: int
    unchanged: int
    removed: int
    generation: str
    changed: bool
    warnings: tuple[str, ...] = field(default=())
    paths: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        if not self.changed:
            return (f"{self.phones} phone{'s' if self.phones != 1 else ''}: nothing changed "
                    f"({self.unchanged} files unchanged, generation {self.generation})")
        return (f"{self.phones} phone{'s' if self.phones != 1 else ''}: {self.written} files written, "
                f"{self.unchanged} unchanged, {self.removed} removed (generation {self.generation})")


def prepare(opts: BuildOptions) -> tuple[Inventory, Plan]:
    inv = load(opts.inventory, opts.secrets, firmware=opts.firmware)
    renderer = Renderer(opts.templates)
    return inv, plan(inv, renderer, opts.firmware, group=opts.group)


def group_id(name: str | None) -> int | None:
    if name is None:
        return None
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise BuildError(f"no group '{name}' on this machine (--group names the group your web server "
                         "runs as, e.g. www-data)") from None


def run(opts: BuildOptions, progress: Callable[[int], None] | None = None,
        on_plan: Callable[[Plan], None] | None = None) -> BuildResult:
    inv, p = prepare(opts)
    if on_plan:
        on_plan(p)
    result: WriteResult = write(p.files(), opts.out, progress=progress, group=group_id(opts.group))
    warnings = tuple(str(w) for w in inv.warnings) + tuple(p.warnings)
    return BuildResult(p.phones, result.written, result.unchanged, result.removed, result.generation,
                       result.changed, warnings, result.paths)


# ------------------------------------------------------------------ diff
MASK = "********"
_PASSWORD_ATTR_RE = re.compile(r'((?:password|Password|secret)[A-Za-z.]*=")([^"]*)(")')


def mask(text: str, secrets: set[str]) -> str:
    text = _PASSWORD_ATTR_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    for s in sorted(secrets, key=len, reverse=True):
        if len(s) >= 3:
            text = text.replace(s, MASK)
    return text


@dataclass(frozen=True)
class Change:
    kind: str  # "add", "change", "remove"
    path: str
    diff: str  # unified diff, secrets masked


def diff(opts: BuildOptions, secrets_extra: set[str] = frozenset()) -> list[Change]:
    """What a build would add, change or remove in out/, with secrets masked."""
    inv, p = prepare(opts)
    gen = current_generation(opts.out)
    old = read_manifest(gen)
    # password attributes are masked by pattern; inventory secrets wherever else they appear
    secrets = inv.secrets() | set(secrets_extra)
    changes: list[Change] = []
    seen = set()
    for f in p.files():
        seen.add(f.path)
        was = old.get(f.path)
        if was is not None and was[0] == f.key and was[3] == f.mode:
            continue
        if f.link is not None:
            new_text = f"(link to {f.link})\n"
            old_text = None if was is None else "(firmware file)\n"
        else:
            new_text = "".join(f.render())
            old_text = None if was is None else _read(gen / f.path)
        if old_text == new_text:
            continue
        kind = "add" if was is None else "change"
        changes.append(Change(kind, f.path, _udiff(f.path, old_text, new_text, secrets)))
    for path in sorted(set(old) - seen):
        changes.append(Change("remove", path, _udiff(path, _read(gen / path), None, secrets)))
    return changes


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


def _udiff(path: str, old: str | None, new: str | None, secrets: set[str]) -> str:
    a = mask(old, secrets).splitlines(keepends=True) if old is not None else []
    b = mask(new, secrets).splitlines(keepends=True) if new is not None else []
    return "".join(difflib.unified_diff(a, b, f"a/{path}" if old is not None else "/dev/null",
                                        f"b/{path}" if new is not None else "/dev/null"))
