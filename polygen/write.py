"""Write a plan into a new generation of out/ and swap it in atomically.

``out`` is a symlink to ``.<out>.gens/g<N>``. A build renders what changed into a staging
directory, hard-links everything else from the current generation (no copies, stable mtimes for
polling phones), writes the manifest, renames the staging directory to its generation name and
then renames a new symlink over ``out``. Readers see the old tree or the new one, never a mix; a
failed or killed build leaves ``out`` as it was. When nothing changed, nothing is written at all.

Ownership does not depend on the umask: every directory polygen makes is 0755 (0750 with a
group), every file it renders gets the plan's mode and the group, and the manifest records each
file's owner and group, so a file whose owner or group must change gets a new inode instead of a
hard link (the inode is shared with the previous generation).

Each generation also holds a build record (``.polygen-build.json``, never served): the commit it
was built from (``polygen build --git``), the generation it replaced (what ``rollback`` returns
to) and its digest, a sha256 over every file's path, bytes and mode, equal on every machine that
builds the same inputs. ``rollback`` swaps ``out`` back to the replaced generation and leaves a
hold beside the generations, so that unattended rebuilds do not quietly put back what it took
down.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from polygen import htpasswd
from polygen.errors import BuildError

if TYPE_CHECKING:  # the sidecar reads build records without loading the planner
    from polygen.plan import OutputFile

MANIFEST = ".polygen-manifest.json"
SERVE_FILE = ".polygen-serve.json"  # what the servers do with override files (polygen.overrides)
BUILD_RECORD = ".polygen-build.json"  # commit, digest, the generation replaced (never served)
ROLLBACK_HOLD = "rollback.json"  # beside the generations: what `polygen rollback` took down
# the only hidden files a plan may hold (web servers never serve dotfiles): the provisioning users,
# and what the sidecar does with the phones' override files (polygen.overrides)
DOTFILES = (htpasswd.FILENAME, SERVE_FILE)
_GEN_RE = re.compile(r"^g(\d{6,})$")
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")
KEEP_GENERATIONS = 2  # the current one and the one before it (rollback, readers still in flight)
DIR_MODE = 0o755  # without a group: the secrets are in 0640 files, names are no secret from local users
GROUP_DIR_MODE = 0o750  # with a group (the web server's): nobody else even lists the MACs
LOCK_MODE = 0o600


@dataclass(frozen=True)
class WriteResult:
    generation: str
    written: int
    unchanged: int
    removed: int
    changed: bool
    paths: tuple[str, ...] = ()  # written, for tests and the bench
    digest: str = ""  # of the generation served after the write (digest()); "" on a dry run
    commit: str | None = None  # the commit the served generation records
    held: bool = False  # an unattended build that would have undone a rollback: nothing swapped


def gens_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.gens"


def current_generation(out: Path) -> Path | None:
    """The generation ``out`` points to, or None before the first build."""
    if not out.is_symlink():
        return None
    target = out.parent / os.readlink(out)
    return target if target.is_dir() else None


def read_manifest(gen: Path | None) -> dict[str, list]:
    """path -> [key, sha256, size, mode]"""
    return _read_manifest_doc(gen).get("files", {})


def _read_manifest_doc(gen: Path | None) -> dict:
    """The whole manifest: ``files``, and the phone index (``phones``, ``site``) when the build
    had one (``write(index=...)``)."""
    if gen is None:
        return {}
    try:
        with open(gen / MANIFEST, encoding="utf-8") as fh:
            doc = json.load(fh)
        doc["files"]  # noqa: B018 - a manifest without it is damaged
        return doc
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{gen / MANIFEST} is damaged ({exc}); remove {gen} and build again") from exc


def digest(manifest: dict[str, list]) -> str:
    """sha256 over the sorted (path, sha256 of the bytes, mode) of every file: what a phone can
    fetch, and nothing of the machine (owners, times, the inventory's location). Two servers that
    build the same commit with the same templates and firmware print the same digest."""
    h = hashlib.sha256()
    for path in sorted(manifest):
        entry = manifest[path]
        sha = entry[1] if entry[1] is not None else f"size:{entry[2]}"  # a link made before links were hashed
        h.update(f"{path}\0{sha}\0{entry[3]:04o}\n".encode())
    return h.hexdigest()


def _json_object(path: Path) -> dict:
    """A small JSON object polygen wrote, or {} when it is missing or damaged."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _put_json(path: Path, data: dict, mode: int, group: int | None) -> None:
    """Write (or replace, atomically) a small JSON object."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    _create(str(tmp), json.dumps(data, sort_keys=True, indent=1).encode() + b"\n", mode, group)
    os.rename(tmp, path)


def read_record(gen: Path | None) -> dict:
    """The build record of a generation: {"commit", "digest", "previous"}; {} if it has none."""
    return {} if gen is None else _json_object(gen / BUILD_RECORD)


def generation_commit(gen: Path | None) -> str | None:
    """The commit a generation was built from (``--git``), or None."""
    commit = read_record(gen).get("commit")
    return commit if isinstance(commit, str) else None


def served_commit(out: Path) -> str | None:
    """The commit the generation ``out`` serves was built from (``--git``), or None: no build
    yet, or built from the files as they were."""
    return generation_commit(current_generation(Path(out)))


def generation_digest(gen: Path) -> str:
    """The digest of a generation: recorded by its build, or computed from its manifest."""
    return read_record(gen).get("digest") or digest(read_manifest(gen))


def _write_record(gen: Path, record: dict, group: int | None) -> None:
    _put_json(gen / BUILD_RECORD, record, 0o640, group)


def _holds(hold: dict, commit: str | None, new_digest: str) -> bool:
    """Would this build put back what `polygen rollback` took down? The same commit, or the same
    bytes."""
    if not hold:
        return False
    return (commit is not None and commit == hold.get("commit")) or new_digest == hold.get("digest")


def _check_out(out: Path) -> None:
    if out.is_symlink():
        target = Path(os.readlink(out))
        if target.parent.name != gens_dir(out).name:
            raise BuildError(f"'{out}' is a symlink polygen did not make (to {target}); remove it and build again")
        return
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # an empty directory (e.g. made by a deployment script) becomes our symlink
            return
        raise BuildError(f"'{out}' is a {'directory' if out.is_dir() else 'file'} that polygen did not "
                         f"create; polygen keeps '{out}' as a symlink to {gens_dir(out)}/. "
                         f"Move it away (mv {out} {out}.old) and build again")


@contextmanager
def build_lock(out: Path):
    """One build at a time per out/ (a CLI build and a watching sidecar may overlap)."""
    g = gens_dir(out)
    g.mkdir(parents=True, exist_ok=True)
    with file_lock(g / "lock"):
        yield


@contextmanager
def file_lock(path: Path):
    """An exclusive flock on ``path`` (made 0600), held for the ``with`` block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, LOCK_MODE)
    with os.fdopen(fd, "a") as fh:
        if stat.S_IMODE(os.fstat(fd).st_mode) != LOCK_MODE:
            os.fchmod(fd, LOCK_MODE)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _own_dir(path: Path, mode: int, gid: int) -> None:
    """Give a directory an explicit mode and group, whatever the umask and the parent's
    set-group-ID bit (chmod after chown: chown may clear mode bits)."""
    st = os.stat(path)
    if st.st_gid != gid:
        os.chown(path, -1, gid)
    if stat.S_IMODE(st.st_mode) != mode or st.st_gid != gid:
        os.chmod(path, mode)


def _next_name(g: Path) -> str:
    n = 0
    for p in g.iterdir():
        m = _GEN_RE.fullmatch(p.name)
        if m:
            n = max(n, int(m.group(1)))
    return f"g{n + 1:06d}"


BLOCK = 1 << 16  # rendered text is encoded, hashed and written in pieces of about this size
STREAM_LIMIT = 1 << 20  # a file larger than this is written while it renders, not held in memory
@functools.lru_cache(maxsize=1)
def _umask() -> int:
    # read once (os.umask can only be read by setting it); O_CREAT's mode is masked by it, and
    # a chmod per file is an extra metadata write that 100k files feel
    old = os.umask(0o022)
    os.umask(old)
    return old


def _create(path: str, data: bytes, mode: int, gid: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            view = memoryview(data)
            while view:  # a raw write may be short
                view = view[fh.write(view):]
            if mode & ~_umask() != mode:  # the umask must not narrow what the plan asked for
                os.fchmod(fh.fileno(), mode)
            if gid is not None:
                os.fchown(fh.fileno(), -1, gid)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def _render_file(path: str, chunks: Iterable[str], mode: int, gid: int | None,
                 same_as: str | None) -> tuple[str, int, bool]:
    """Render and write one file; (sha256, size, written).

    Small files are rendered whole, hashed, and not written at all when the hash is ``same_as``
    (the previous build's bytes: the old inode is linked instead). A file that grows past
    STREAM_LIMIT is written while it renders, so memory does not grow with the directory.
    (Measured: I/O threads only slowed 100k small creates down, GIL hand-offs cost more than the
    disk waits they hide.)
    """
    h = hashlib.sha256()
    blocks: list[bytes] = []
    size = 0
    fh = None
    pending, plen = [], 0
    try:
        for chunk in chunks:
            pending.append(chunk)
            plen += len(chunk)
            if plen >= BLOCK:
                size += _block(h, blocks, pending)
                pending, plen = [], 0
                if fh is None and size > STREAM_LIMIT:  # large: stream it from here on
                    fh = _open_new(path, mode, gid)
                if fh is not None:
                    for b in blocks:
                        fh.write(b)
                    blocks.clear()
        size += _block(h, blocks, pending)
        sha = h.hexdigest()
        if fh is not None:
            for b in blocks:
                fh.write(b)
            fh.close()
            return sha, size, True
    except BaseException:
        if fh is not None:
            fh.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    if sha == same_as:
        return sha, size, False
    _create(path, b"".join(blocks), mode, gid)
    return sha, size, True


def _block(h, blocks: list[bytes], pending: list[str]) -> int:
    b = "".join(pending).encode("utf-8")
    h.update(b)
    blocks.append(b)
    return len(b)


def _open_new(path: str, mode: int, gid: int | None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    if mode & ~_umask() != mode:
        os.fchmod(fd, mode)
    if gid is not None:
        os.fchown(fd, -1, gid)
    return os.fdopen(fd, "wb", buffering=1 << 16)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        os.symlink(os.path.abspath(src), dst)  # firmware on another filesystem


def write(files: Iterable[OutputFile], out: Path, *, progress: Callable[[int], None] | None = None,
          dry_run: bool = False, group: int | None = None, max_phone_loss: float | None = None,
          keep_auth: bool = False, commit: str | None = None, keep_rollback: bool = False,
          index: dict | None = None) -> WriteResult:
    """``group``: the gid of every file and directory of the generation (e.g. www-data's, so
    nginx can read the 0640 files); None: the builder's own group.
    ``max_phone_loss``: refuse (BuildError, nothing swapped) a build that would remove more than
    this fraction of the phones' files; ``keep_auth``: refuse one that would turn provisioning auth
    off or change its user. Unattended rebuilds use both against half-saved inventories.
    ``commit``: the commit the files were built from, recorded in the generation (a build that
    changes no file records it in the generation served). ``keep_rollback``: swap nothing when
    the build is of the commit, or has the bytes, that `polygen rollback` took down (``held``).
    ``index``: the phone index (``plan.Plan.index``) kept in the manifest beside ``files``, for
    the sidecar and ``polygen status``; a generation whose index differs is written anew even
    when no file changed (one built before polygen kept it)."""
    out = Path(out)
    _check_out(out)
    with build_lock(out):
        return _write_locked(files, out, progress, dry_run, group, max_phone_loss, keep_auth, commit,
                             keep_rollback, index)


def _write_locked(files, out: Path, progress, dry_run, group, max_phone_loss=None, keep_auth=False,
                  commit: str | None = None, keep_rollback: bool = False, index=None) -> WriteResult:
    g = gens_dir(out)
    prev = current_generation(out)
    old_doc = _read_manifest_doc(prev)
    old = old_doc.get("files", {})
    index = index or {}
    stale_index = any(old_doc.get(k) != v for k, v in index.items())
    _clean_stale(g, out)
    gid = group if group is not None else os.getegid()
    attrs = [os.geteuid(), gid]  # recorded per file: a file is reused only when they match
    dir_mode = DIR_MODE if group is None else GROUP_DIR_MODE
    if not dry_run:
        _own_dir(g, dir_mode, gid)
    manifest: dict[str, list] = {}
    keep: list[str] = []
    written: list[str] = []
    staging: Path | None = None
    made_dirs: set[str] = set()

    def stage() -> Path:
        nonlocal staging
        if staging is None:
            staging = g / f"tmp-{os.getpid()}-{time.monotonic_ns()}"
            staging.mkdir(mode=dir_mode)
            _own_dir(staging, dir_mode, gid)
        return staging

    def ensure_parent(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in made_dirs:
            root = stage()
            parts = parent.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in made_dirs:
                    (root / sub).mkdir(mode=dir_mode, exist_ok=True)
                    _own_dir(root / sub, dir_mode, gid)
                    made_dirs.add(sub)

    try:
        for n, f in enumerate(files, 1):
            if not (_SAFE_PATH_RE.fullmatch(f.path) or f.path in DOTFILES) or ".." in f.path.split("/") \
                    or f.path == MANIFEST:
                raise BuildError(f"refusing to write '{f.path}' ({f.origin}): not a safe relative path")
            if f.path in manifest:
                raise BuildError(f"two files want '{f.path}' (the second from {f.origin})")
            was = old.get(f.path)
            if was is not None and was[0] == f.key and was[3] == f.mode and (f.link is not None or was[4:] == attrs):
                manifest[f.path] = was
                keep.append(f.path)
            elif dry_run:
                manifest[f.path] = [f.key, None, None, f.mode]
                written.append(f.path)
            else:
                ensure_parent(f.path)
                dst = stage() / f.path
                if f.link is not None:
                    _link(f.link, dst)
                    # hashed once per new link (firmware changes rarely): the digest covers its bytes
                    manifest[f.path] = [f.key, _file_sha256(f.link), f.link.stat().st_size, f.mode]
                else:
                    # same bytes from new inputs (e.g. a template comment changed elsewhere):
                    # keep the old inode so the phone sees an unchanged file, unless its owner or
                    # group must change (the inode is shared with the previous generation)
                    same = was[1] if was is not None and was[3] == f.mode else None
                    regroup = same is not None and was[4:] != attrs
                    sha, size, wrote = _render_file(str(dst), f.render(), f.mode, group,
                                                    None if regroup else same)
                    manifest[f.path] = [f.key, sha, size, f.mode, *attrs]
                    if sha == same and regroup:  # a new inode with the old one's times
                        old_st = os.stat(f"{prev}/{f.path}")
                        os.utime(dst, ns=(old_st.st_atime_ns, old_st.st_mtime_ns))
                    elif sha == same:
                        if wrote:  # streamed before its hash was known
                            dst.unlink()
                        keep.append(f.path)
                        continue
                written.append(f.path)
            if progress and n % 256 == 0:
                progress(256)
        removed = [p for p in old if p not in manifest]
        changed = bool(written or removed) or (prev is None) or any(old[p] != manifest[p] for p in keep) \
            or stale_index
        new_digest = "" if dry_run else digest(manifest)
        if not dry_run and prev is not None and changed and keep_rollback and _holds(_json_object(g / ROLLBACK_HOLD), commit, new_digest):
            if staging is not None:
                shutil.rmtree(staging)
            served = read_record(prev)
            return WriteResult(prev.name, 0, len(old), 0, False, (), generation_digest(prev), served.get("commit"),
                               held=True)
        if max_phone_loss is not None:
            had = sum(1 for p in old if p.endswith("-phone.cfg"))
            lost = sum(1 for p in removed if p.endswith("-phone.cfg"))
            if had >= 2 and lost > had * max_phone_loss:
                raise BuildError(f"refusing to remove {lost} of {had} phones in one unattended rebuild "
                                 "(a half-saved or deleted inventory file?); the last build stays served. "
                                 "Run `polygen build` to apply it deliberately")
        if keep_auth:
            weaker = _auth_weakened(prev, old, manifest, staging if htpasswd.FILENAME in written else None)
            if weaker:
                raise BuildError(f"refusing to {weaker} in an unattended rebuild (a half-saved site file?); "
                                 "the last build stays served. Run `polygen build` to apply it deliberately")
        if dry_run:
            if staging is not None:
                shutil.rmtree(staging)
            return WriteResult(prev.name if prev else "", len(written), len(keep), len(removed), False,
                               tuple(written))
        if not changed:
            if staging is not None:
                shutil.rmtree(staging)
            served = read_record(prev)
            if commit is not None and served.get("commit") != commit:
                # the same bytes from a new commit: the generation served now stands for it
                served = {**served, "commit": commit, "digest": new_digest}
                _write_record(prev, served, group)
            return WriteResult(prev.name, 0, len(keep), 0, False, (), new_digest, served.get("commit"))
        st = stage()
        src_root, dst_root = f"{prev}/", f"{st}/"  # plain strings: 100k Path joins cost a second
        for rel in keep:
            ensure_parent(rel)
            os.link(src_root + rel, dst_root + rel)
        # one-shot dumps uses the C encoder; json.dump streams through the Python one
        _create(str(st / MANIFEST), json.dumps({"version": 1, **index, "files": manifest}, separators=(",", ":"),
                                               sort_keys=True).encode(), 0o640, group)
        _write_record(st, {"version": 1, "commit": commit, "digest": new_digest,
                           "previous": prev.name if prev else None}, group)
        name = _next_name(g)
        final = g / name
        os.rename(st, final)
        staging = None
        _swap(out, final)
        (g / ROLLBACK_HOLD).unlink(missing_ok=True)  # a new build is live: the rollback is over
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            what = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise BuildError(f"writing {out} failed: {what} ({exc.filename or g}); {out} is unchanged") from exc
        raise
    _collect(g, keep={final.name, prev.name if prev else ""})
    if prev is not None:  # kept for rollback: a group that lost its access loses it there too
        with contextlib.suppress(OSError):
            if os.stat(prev).st_gid != gid:
                os.chmod(prev, 0o700)
    return WriteResult(name, len(written), len(keep), len(removed), True, tuple(written), new_digest, commit)


@dataclass(frozen=True)
class RolledBack:
    generation: str  # served now
    commit: str | None
    undone: str  # served before
    undone_commit: str | None


def rollback(out: Path) -> RolledBack:
    """Serve again the generation the current one replaced: the same atomic swap as a build.

    The generation taken down stays on disk, and a hold beside the generations names its commit
    and digest: unattended rebuilds (``write(keep_rollback=True)``) swap nothing while they would
    put it back. A deliberate build, or any build with other bytes, ends the hold."""
    out = Path(out)
    _check_out(out)
    if current_generation(out) is None:
        raise BuildError(f"nothing to roll back: '{out}' has no build yet")
    with build_lock(out):
        g = gens_dir(out)
        cur = current_generation(out)
        record = read_record(cur)
        previous = record.get("previous") if isinstance(record.get("previous"), str) else None
        if previous is None and not record:  # built before generations recorded what they replaced
            older = sorted(p.name for p in g.iterdir() if _GEN_RE.fullmatch(p.name) and p.name < cur.name)
            previous = older[-1] if older else None
        target = g / previous if previous is not None and _GEN_RE.fullmatch(previous) else None
        if target is None or not target.is_dir():
            raise BuildError(f"nothing to roll back to: {out} serves {cur.name}, and the generation before it is "
                             "not kept (polygen keeps the current build and the one it replaced)")
        if stat.S_IMODE(os.stat(target).st_mode) == 0o700:
            raise BuildError(f"cannot roll back to {target.name}: a later build gave the files another group "
                             "(--group) and took this generation's access away; run `polygen build` instead")
        read_manifest(target)  # a damaged generation is refused before it is served
        _put_json(g / ROLLBACK_HOLD, {"generation": cur.name, "commit": record.get("commit"),
                                      "digest": generation_digest(cur)}, 0o644, None)  # no secret in it
        _swap(out, target)
    return RolledBack(target.name, read_record(target).get("commit"), cur.name, record.get("commit"))


def _auth_weakened(prev: Path | None, old: dict, manifest: dict, staging: Path | None) -> str | None:
    """What the new generation would weaken in provisioning auth, or None. ``staging``: where
    a rewritten .htpasswd is (None when it is unchanged or gone). User names stay out of the
    message: it is logged and shown on /healthz."""
    name = htpasswd.FILENAME
    if prev is None or name not in old:
        return None  # no auth to weaken (turning it on is always fine)
    if name not in manifest:
        return "turn provisioning auth off"
    if staging is not None and _first_user(prev / name) != _first_user(staging / name):
        return "change the provisioning user"
    return None


def _first_user(path: Path) -> str | None:
    try:
        return next(iter(htpasswd.parse(path.read_text(encoding="utf-8", errors="replace"))), None)
    except OSError:
        return None


def _swap(out: Path, final: Path) -> None:
    tmp = out.parent / f".{out.name}.swap-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(final, out.parent), tmp)
    os.rename(tmp, out)  # atomic: readers resolve either the old or the new generation
    _fsync_dir(out.parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean_stale(g: Path, out: Path) -> None:
    """Staging directories of killed builds (we hold the lock, so none is in use)."""
    for p in g.iterdir():
        if p.name.startswith("tmp-"):
            shutil.rmtree(p, ignore_errors=True)
    for p in out.parent.glob(f".{out.name}.swap-*"):
        p.unlink(missing_ok=True)


def _collect(g: Path, keep: set[str]) -> None:
    gens = sorted((p for p in g.iterdir() if _GEN_RE.fullmatch(p.name)), key=lambda p: p.name)
    for p in gens[:-KEEP_GENERATIONS]:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
