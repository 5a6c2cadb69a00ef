"""The view of ``out/``: the current generation behind the symlink, its manifest and UA index,
and the one check that a relative name is a plain file inside the generation (``safe_file``)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from polygen import overrides
from polygen.useragent import dispatch

log = logging.getLogger("polygen.sidecar")

DEFAULT_BOOTSTRAP = "000000000000.cfg"
MANIFEST = ".polygen-manifest.json"
UA_INDEX = "ua-index.json"

_PHONE_CFG_RE = re.compile(r"([0-9a-f]{12})-phone\.cfg", re.ASCII)
_SAFE_REL_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*", re.ASCII)


@dataclass(frozen=True)
class Manifest:
    files: frozenset[str]  # relative paths the build wrote (and linked)
    macs: frozenset[str]  # the phones the inventory knows: one per <mac>-phone.cfg
    lines: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # MAC -> its extensions


_EMPTY_MANIFEST = Manifest(frozenset(), frozenset())


class OutTree:
    """Reads the current generation behind the ``out`` symlink.

    ``out`` is swapped atomically by each build, so it is resolved once per request
    (``generation()``) and everything a request needs is read from that one directory: a request
    never mixes two generations. The manifest and the UA index are parsed once and cached by the
    file's (device, inode, mtime, size): a rebuild that changes them is picked up on the next request
    without a restart; hard-linked unchanged files keep their inode, and their cache entry.
    Used from the event loop thread only.
    """

    def __init__(self, out: Path):
        self.out = Path(out).absolute()
        self._manifest: tuple[tuple, Manifest] | None = None
        self._index: tuple[tuple, dict] | None = None
        self._policy: tuple[tuple, str] | None = None

    def generation(self) -> Path | None:
        try:
            root = self.out.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return root if root.is_dir() else None

    @staticmethod
    def _key(path: Path) -> tuple | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def manifest(self, gen: Path) -> Manifest:
        path = gen / MANIFEST
        key = self._key(path)
        if key is None:
            return _EMPTY_MANIFEST
        if self._manifest is not None and self._manifest[0] == key:
            return self._manifest[1]
        try:
            data = json.loads(path.read_bytes())
            files = data.get("files", data) if isinstance(data, dict) else {}
            if not isinstance(files, dict):
                raise ValueError("'files' is not an object")
        except (OSError, ValueError) as exc:
            log.error("cannot read %s: %s", path, exc)
            return _EMPTY_MANIFEST
        names = frozenset(str(k) for k in files)
        macs = frozenset(m[1] for name in names if (m := _PHONE_CFG_RE.fullmatch(name)))
        manifest = Manifest(names, macs, phone_lines(data))
        self._manifest = (key, manifest)
        return manifest

    def ua_index(self, gen: Path) -> dict | None:
        path = gen / UA_INDEX
        key = self._key(path)
        if key is None:
            return None
        if self._index is not None and self._index[0] == key:
            return self._index[1]
        try:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
                raise ValueError("not a UA index object")
        except (OSError, ValueError) as exc:
            log.error("cannot read %s: %s", path, exc)
            return None
        self._index = (key, data)
        return data

    def overrides_policy(self, gen: Path) -> str:
        """``site.overrides`` of this generation (keep or discard)."""
        key = self._key(gen / overrides.SERVE_FILE)
        if self._policy is None or self._policy[0] != key:
            self._policy = (key, overrides.read_policy(gen))
        return self._policy[1]

    def bootstrap_for(self, gen: Path, user_agent: str | None) -> tuple[str, bytes]:
        """The bootstrap file (relative name, bytes) for this User-Agent: the model's, else the default."""
        index = self.ua_index(gen) or {}
        models = index.get("models") or {}
        default = index.get("default") or DEFAULT_BOOTSTRAP
        # the rule the generated nginx map applies too (polygen.useragent.dispatch)
        token = dispatch(user_agent, models)
        choice = models.get(token) or default
        for rel in dict.fromkeys((choice, default, DEFAULT_BOOTSTRAP)):
            path = safe_file(gen, rel)
            if path is not None:
                return rel, path.read_bytes()
        raise web.HTTPServiceUnavailable(text=f"the current build has no {DEFAULT_BOOTSTRAP}")


def phone_lines(manifest: object) -> dict[str, tuple[str, ...]]:
    """MAC -> the extensions on its lines, from the manifest's phone index (``polygen.write``);
    empty for a build made before polygen wrote one."""
    phones = manifest.get("phones") if isinstance(manifest, dict) else None
    if not isinstance(phones, dict):
        return {}
    return {str(mac): tuple(str(x) for x in entry["lines"]) for mac, entry in phones.items()
            if isinstance(entry, dict) and isinstance(entry.get("lines"), list)}


def safe_file(gen: Path, rel: object) -> Path | None:
    """``gen/rel`` if ``rel`` is a plain relative name of a regular file inside ``gen``; else None."""
    if not isinstance(rel, str) or not _SAFE_REL_RE.fullmatch(rel):
        return None
    try:
        path = (gen / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(gen) or not path.is_file():
        return None
    return path
