"""Private pickle caches: ``read(path, key)`` and ``write(path, key, obj)``.

A cache file holds passwords and unpickling it runs whatever it says, so it is read only when it
is ours alone (owned by this user, no group or other permission bits) and its first line names
this format and the caller's key; anything else (missing, foreign, stale, damaged) reads as None
and costs only the time to rebuild. Writes go to a private temporary file renamed into place, so
a reader never sees half a file.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
from pathlib import Path

log = logging.getLogger("polygen.cache")

# The first line of every file: changes when the layout of what is pickled moves (a class's
# module, say), so files an older polygen wrote read as stale instead of failing or misleading
FORMAT = b"polygen-cache 2 "


def read(path: Path, key: bytes):
    """What ``write(path, key, obj)`` stored, or None."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                return None
            if fh.readline() != FORMAT + key + b"\n":
                return None
            was = gc.isenabled()
            gc.disable()  # millions of acyclic objects: each collection would rescan them all
            try:
                return pickle.load(fh)
            finally:
                if was:
                    gc.enable()
    except Exception:  # a missing, stale or damaged cache is only slower
        return None


def write(path: Path, key: bytes, obj) -> None:
    """Store ``obj`` under ``key`` (one line, no newline in it), mode 0600; failures are only logged."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(FORMAT + key + b"\n")
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.rename(tmp, path)
    except Exception as exc:  # a full disk or an object that cannot be pickled: only slower next time
        log.debug("cache %s not written: %s", path, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
