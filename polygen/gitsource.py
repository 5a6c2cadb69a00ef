"""The inventory as committed (``--git``): which commit, and its files in a private directory.

A build from git reads the inventory's ``*.yaml`` files from one commit (HEAD of the repository
holding the inventory, or a branch), never from the working tree, so a half-saved or uncommitted
file never goes live. The templates and the firmware come from the working tree (the templates
are polygen's, the firmware is never committed), and so does the secrets file, which git ignores.

Git runs read-only (``rev-parse``, ``ls-tree``, ``cat-file``), with ``safe.directory`` set for
this one call: the service's user builds an inventory that an admin owns. The files are written
into ``.<out>.gens/inventory-git/`` (0700, files 0600: they may hold passwords), always under
the same name, so the builds' caches stay warm from one commit to the next; messages name them as
they are in the repository (``inventory/phones.yaml:3``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from polygen.errors import BuildError, InventoryError
from polygen.inventory import SECRETS_FILENAMES, Problem

EXPORT_DIR = "inventory-git"
EXPORT_LOCK = "inventory-git.lock"
COMMIT_FILE = ".commit"  # in the export: the commit it holds (hidden: the loader skips it)
GIT_TIMEOUT = 120.0
# variables a git hook (or a shell inside one) sets that would point git at another repository
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                      "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_CEILING_DIRECTORIES")
_OID_RE = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


@dataclass(frozen=True)
class GitSource:
    inventory: Path  # the inventory directory as given (-i): names in messages
    top: Path  # the top of the work tree holding it
    prefix: str  # the inventory's path in the repository, "" or ending in "/"
    branch: str | None = None  # None: HEAD

    @property
    def ref(self) -> str:
        return self.branch or "HEAD"


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    try:
        return subprocess.run(["git", "-c", "safe.directory=*", "-c", "core.fsmonitor=false", *args], cwd=cwd,
                              input=stdin, capture_output=True, env=env, timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise BuildError("--git needs git, which is not installed here (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"git {args[0]} in {cwd} did not finish in {GIT_TIMEOUT:g} s") from None


def _stderr(result: subprocess.CompletedProcess) -> str:
    """git's last line of complaint (its first may be a hint)."""
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def locate(inventory: Path, branch: str | None = None) -> GitSource:
    """The repository holding ``inventory``; BuildError when there is none."""
    inventory = Path(inventory)
    if not inventory.is_dir():
        raise InventoryError(f"inventory directory '{inventory}' does not exist; create it or pass -i DIR")
    result = _git(inventory, "rev-parse", "--show-toplevel", "--show-prefix")
    lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
    if result.returncode != 0 or not lines:
        raise BuildError(f"--git: {inventory} is not in a git repository ({_stderr(result)}); commit the "
                         f"inventory first (git -C {inventory} init), or build the files as they are without --git")
    if branch is not None and (not branch or branch.startswith("-")):
        raise BuildError(f"--branch '{branch}' is not a branch name")
    return GitSource(inventory, Path(lines[0]), lines[1] if len(lines) > 1 else "", branch)


def resolve(source: GitSource) -> str:
    """The commit the inventory is built from now: HEAD, or the branch's tip."""
    result = _git(source.top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{source.ref}^{{commit}}")
    commit = result.stdout.decode("ascii", "replace").strip()
    if result.returncode != 0 or not _OID_RE.fullmatch(commit):
        if source.branch is not None:
            raise BuildError(f"--branch {source.branch}: no such branch in the repository at {source.top}; "
                             f"`git -C {source.top} branch` lists them")
        raise BuildError(f"--git: the repository at {source.top} has no commit yet; commit the inventory "
                         f"(git -C {source.top} add . && git -C {source.top} commit)")
    return commit


def probe(source: GitSource, secrets: Path | None = None) -> object:
    """What a watcher compares, cheaply, to see that a build is due: the commit and the working
    tree's secrets file (its stat). An error is a value too, so its repair is a change."""
    try:
        commit = resolve(source)
    except BuildError as exc:
        commit = f"error: {exc.format_message()}"
    path = _secrets_file(source, secrets)
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        st = None
    return commit, (st.st_ino, st.st_size, st.st_mtime_ns) if st is not None else None


def _secrets_file(source: GitSource, secrets: Path | None) -> Path | None:
    """The working tree's secrets file: --secrets, or the first of inventory/secrets.yaml|yml."""
    if secrets is not None:
        return Path(secrets)
    return next((source.inventory / n for n in SECRETS_FILENAMES if (source.inventory / n).is_file()), None)


def _wanted(rel: str) -> bool:
    """The files the inventory loader reads (polygen.inventory.inventory_files), secrets aside."""
    p = PurePosixPath(rel)
    return (p.suffix in (".yaml", ".yml") and not any(part.startswith(".") for part in p.parts)
            and not (len(p.parts) == 1 and p.name in SECRETS_FILENAMES))


def export(source: GitSource, commit: str, dest: Path) -> None:
    """Write the inventory files of ``commit`` into ``dest`` (a new directory, 0700)."""
    spec = source.prefix.rstrip("/") or "."
    result = _git(source.top, "ls-tree", "-r", "-z", "--full-tree", commit, "--", source.prefix or ".")
    if result.returncode != 0:
        raise BuildError(f"--git: cannot list {spec} in commit {commit[:12]} ({_stderr(result)})")
    entries: list[tuple[str, str]] = []
    for item in result.stdout.split(b"\0"):
        if not item:
            continue
        meta, _, path_b = item.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split(" ")
        path = path_b.decode("utf-8", "surrogateescape")
        rel = path[len(source.prefix):] if path.startswith(source.prefix) else None
        if rel is None or not _wanted(rel):
            continue
        parts = rel.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\\" in rel:
            raise BuildError(f"--git: commit {commit[:12]} holds '{path}', not a plain relative name")
        if kind != "blob" or mode not in ("100644", "100755"):
            what = "a symbolic link" if mode == "120000" else f"not a regular file (mode {mode})"
            raise BuildError(f"{source.inventory / rel}: {what} in commit {commit[:12]}; a build from git reads "
                             "regular files only: commit the file itself")
        entries.append((rel, oid))
    if not entries:
        raise InventoryError(f"no *.yaml files in inventory directory '{source.inventory}' in commit {commit[:12]}; "
                             f"commit them (git -C {source.top} add {spec} && git commit)")
    blobs = _cat(source, [oid for _, oid in entries])
    dest.mkdir(mode=0o700)
    for rel, oid in entries:
        path = dest / rel
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blobs[oid])
    (dest / COMMIT_FILE).write_text(commit + "\n")


def _cat(source: GitSource, oids: list[str]) -> dict[str, bytes]:
    """The blobs, read with one ``git cat-file --batch``."""
    wanted = list(dict.fromkeys(oids))
    result = _git(source.top, "cat-file", "--batch", stdin="".join(o + "\n" for o in wanted).encode())
    if result.returncode != 0:
        raise BuildError(f"--git: git cat-file failed in {source.top} ({_stderr(result)})")
    out, pos, blobs = result.stdout, 0, {}
    for oid in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii").split(" ")
        if len(header) != 3 or header[1] != "blob":
            raise BuildError(f"--git: object {oid} is missing from the repository at {source.top}")
        size = int(header[2])
        blobs[oid] = out[end + 1:end + 1 + size]
        pos = end + 1 + size + 1  # the contents end with a newline of git's own
    return blobs


def checkout(source: GitSource, commit: str, gens: Path) -> Path:
    """The export of ``commit`` in ``gens``: reused when it holds that commit, else made anew
    beside it and renamed in (the caller holds the export lock)."""
    dest = gens / EXPORT_DIR
    try:
        if (dest / COMMIT_FILE).read_text().strip() == commit:
            return dest
    except OSError:
        pass
    tmp = gens / f"{EXPORT_DIR}.new-{os.getpid()}"
    old = gens / f"{EXPORT_DIR}.old-{os.getpid()}"
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        export(source, commit, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def _shown(text: str, export_dir: Path, inventory: Path) -> str:
    return text.replace(str(export_dir), str(inventory))


def _named_as_committed(exc: InventoryError, export_dir: Path, inventory: Path, commit: str) -> InventoryError:
    problems = [dataclasses.replace(p, file=_shown(p.file, export_dir, inventory),
                                    message=_shown(p.message, export_dir, inventory))
                if isinstance(p, Problem) else p for p in exc.problems]
    err = InventoryError(f"{_shown(exc.format_message(), export_dir, inventory)} (commit {commit[:12]})", problems)
    return err


def run(opts, source: GitSource, progress: Callable[[int], None] | None = None, on_plan=None):
    """``polygen.build.run`` on the inventory as committed: the commit is resolved now, its
    files exported, the secrets file read from the working tree. Returns the BuildResult."""
    from polygen.build import run as build_run
    from polygen.write import file_lock, gens_dir

    gens = gens_dir(Path(opts.out))
    gens.mkdir(parents=True, exist_ok=True)
    with file_lock(gens / EXPORT_LOCK):  # one export at a time: a build by hand beside the service
        commit = resolve(source)
        export_dir = checkout(source, commit, gens)
        committed = dataclasses.replace(opts, inventory=export_dir, secrets=_secrets_file(source, opts.secrets))
        try:
            result = build_run(committed, progress=progress, on_plan=on_plan, commit=commit)
        except InventoryError as exc:
            raise _named_as_committed(exc, export_dir, source.inventory, commit) from None
    return dataclasses.replace(result, warnings=tuple(_shown(w, export_dir, source.inventory) for w in result.warnings))
