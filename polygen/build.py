"""``run(BuildOptions) -> BuildResult``: load, plan, write. Used by the CLI, watch, serve and bench."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from polygen.errors import BuildError
from polygen.exposure import no_auth_warning
from polygen.firmware import read_releases
from polygen.htpasswd import FILENAME as HTPASSWD_FILENAME
from polygen.inventory import Inventory, load
from polygen.plan import Plan, plan
from polygen.render import Renderer
from polygen.safetext import mask, visible
from polygen.write import WriteResult, current_generation, read_manifest, write


@dataclass(frozen=True)
class BuildOptions:
    inventory: Path
    out: Path
    templates: Path
    firmware: Path
    secrets: Path | None = None
    group: str | None = None  # group of the files holding secrets (0640), e.g. www-data
    max_phone_loss: float | None = None  # unattended rebuilds refuse to drop more phones than this
    keep_auth: bool = False  # unattended rebuilds refuse to turn provisioning auth off or change its user
    keep_rollback: bool = False  # unattended rebuilds do not put back what `polygen rollback` took down


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
    digest: str = ""  # of the generation served (polygen.write.digest): compare it between servers
    commit: str | None = None  # the commit the generation served records (--git)
    held: bool = False  # nothing swapped: it would have put back what `polygen rollback` took down

    def served(self) -> str:
        """``generation g000002, commit 1a2b3c4d5e6f, digest 0123456789abcdef``"""
        parts = [f"generation {self.generation}"]
        if self.commit:
            parts.append(f"commit {self.commit[:12]}")
        if self.digest:
            parts.append(f"digest {self.digest[:16]}")
        return ", ".join(parts)

    def summary(self) -> str:
        phones = f"{self.phones} phone{'s' if self.phones != 1 else ''}"
        if self.held:
            return (f"{phones}: not served, it is what `polygen rollback` took down; a new commit or "
                    f"`polygen build` serves the inventory again ({self.served()})")
        if not self.changed:
            return f"{phones}: nothing changed ({self.unchanged} files unchanged, {self.served()})"
        return (f"{phones}: {self.written} files written, "
                f"{self.unchanged} unchanged, {self.removed} removed ({self.served()})")


def prepare(opts: BuildOptions, inv: Inventory | None = None, *, make_cache: bool = True
            ) -> tuple[Inventory, Plan]:
    if inv is None:
        inv = _load(opts, make_cache)
    renderer = Renderer(opts.templates)
    releases = read_releases(opts.firmware, (m.firmware for m in inv.models_in_use()))
    return inv, plan(inv, renderer, releases, group=opts.group)


def _load(opts: BuildOptions, make_cache: bool) -> Inventory:
    from polygen.write import gens_dir

    # each file's own checks are cached beside the generations: an edit re-reads one file
    cache = gens_dir(Path(opts.out)) / FILES_CACHE
    return load(opts.inventory, opts.secrets, firmware=opts.firmware,
                cache=cache if make_cache or cache.is_dir() else None)


def load_inventory(opts: BuildOptions) -> Inventory:
    """The inventory as the next build sees it, from the builds' caches when they are current;
    creates nothing."""
    return _cached_load(opts, _inputs_key(opts)) or _load(opts, make_cache=False)


# ------------------------------------------------------------------ inventory cache
# Loading (YAML parse + validation) is most of a rebuild: 10 s of a 100k-phone no-op build against
# 0.35 s to unpickle the Inventory. run() keeps the last loaded Inventory beside the generations,
# keyed by a digest of everything load() reads: the bytes of every inventory and secrets file (not
# their mtimes: no racy same-second edits), the secrets file's mode (it warns on 0644), POLYGEN_*
# variables, the year (DST rules), the firmware parameter sources' stats, polygen's own sources.
CACHE_FILE = "inventory.cache"
FILES_CACHE = "inventory-files"


def _inputs_key(opts: BuildOptions) -> bytes:
    import hashlib
    import os
    import sys

    from polygen import __version__
    from polygen.inventory import SECRETS_FILENAMES, _rules_year, inventory_files

    h = hashlib.blake2b(digest_size=32)

    def put(*parts) -> None:
        h.update(repr(parts).encode() + b"\0")

    pkg = Path(__file__).parent
    put(__version__, sys.version, str(Path(opts.inventory).resolve()), str(opts.secrets), _rules_year(),
        sorted((k, v) for k, v in os.environ.items() if k.startswith("POLYGEN_")))
    for p in sorted(pkg.rglob("*")):
        if p.suffix in (".py", ".gz"):
            st = p.stat()
            put(str(p), st.st_size, st.st_mtime_ns)
    candidates = [Path(opts.secrets)] if opts.secrets else [Path(opts.inventory) / n for n in SECRETS_FILENAMES]
    for f in inventory_files(Path(opts.inventory)) + candidates:
        try:
            put(str(f), os.stat(f).st_mode)
            h.update(f.read_bytes())
        except OSError as exc:
            put(str(f), exc.errno)
    fw = Path(opts.firmware)
    if fw.is_dir():
        # a release may be a link to another disk; the depth limit also bounds a link loop
        for root, dirs, files in os.walk(fw, followlinks=True):
            dirs.sort()
            if len(Path(root).relative_to(fw).parts) >= 3:
                dirs[:] = []
            for n in sorted(files):
                try:
                    st = os.stat(os.path.join(root, n))
                except OSError as exc:
                    # a broken link (a release no phone runs, a disk not mounted yet) is only an
                    # input: plan() refuses it where a phone fetches the file
                    put(root, n, exc.errno)
                else:
                    put(root, n, st.st_size, st.st_mtime_ns)
    return h.hexdigest().encode()


def _cached_load(opts: BuildOptions, key: bytes) -> Inventory | None:
    """The cached Inventory when its key matches (polygen.cache), else None."""
    from polygen import cache
    from polygen.write import gens_dir

    inv = cache.read(gens_dir(Path(opts.out)) / CACHE_FILE, key)
    return inv if isinstance(inv, Inventory) else None


def _store_cache(opts: BuildOptions, key: bytes, inv: Inventory) -> None:
    from polygen import cache
    from polygen.write import gens_dir

    cache.write(gens_dir(Path(opts.out)) / CACHE_FILE, key, inv)


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
        on_plan: Callable[[Plan], None] | None = None, *, commit: str | None = None) -> BuildResult:
    """``commit``: what the inventory was exported from (polygen.gitsource), recorded in the
    generation."""
    key = _inputs_key(opts)  # before loading: an edit during the build makes the next one reload
    cached = _cached_load(opts, key)
    inv, p = prepare(opts, cached)
    if on_plan:
        on_plan(p)
    result: WriteResult = write(p.files(), opts.out, progress=progress, group=group_id(opts.group),
                                max_phone_loss=opts.max_phone_loss, keep_auth=opts.keep_auth, commit=commit,
                                keep_rollback=opts.keep_rollback, index=p.index() if p.index else None)
    if cached is None:
        _store_cache(opts, key, inv)
    # located problems print as file:line: path: warning: …; the others (firmware, catalog) as text
    warnings = tuple(str(w) if w.file else w.message for w in inv.warnings) + tuple(p.warnings)
    if inv.site.auth is None:
        warnings += (no_auth_warning(inv.site_file),)
    return BuildResult(p.phones, result.written, result.unchanged, result.removed, result.generation,
                       result.changed, warnings, result.paths, result.digest, result.commit, result.held)


# ------------------------------------------------------------------ diff
@dataclass(frozen=True)
class Change:
    kind: str  # "add", "change", "remove"
    path: str
    diff: str  # unified diff, secrets masked


def diff(opts: BuildOptions, secrets_extra: set[str] = frozenset()) -> list[Change]:
    """What a build would add, change or remove in out/, with secrets masked."""
    inv, p = prepare(opts, make_cache=False)  # diff creates nothing; it uses a build's cache
    gen = current_generation(opts.out)
    old = read_manifest(gen)
    # credential parameters are masked by name; inventory secrets wherever else they appear
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
    # every credential masked (polygen.safetext), .htpasswd hashes included; control characters
    # (none in a build, but an old generation is a file on disk) made visible
    htpasswd = PurePosixPath(path).name == HTPASSWD_FILENAME
    a = visible(mask(old, secrets, htpasswd=htpasswd)).splitlines(keepends=True) if old is not None else []
    b = visible(mask(new, secrets, htpasswd=htpasswd)).splitlines(keepends=True) if new is not None else []
    return "".join(difflib.unified_diff(a, b, f"a/{path}" if old is not None else "/dev/null",
                                        f"b/{path}" if new is not None else "/dev/null"))
