"""nginx's JSON access log, read as the sidecar's own sightings (``polygen.sightings``).

Where nginx serves ``out/``, the sidecar never sees the phones fetch their configs: it sees only
the log uploads nginx passes on. ``polygen nginx --access-log FILE`` makes nginx write one JSON
object per request (``LOG_FORMAT``: ``log_format ... escape=json``, so a User-Agent cannot break
the line), and ``polygen serve --nginx-log FILE`` reads it as it grows (``Tail``), so
``polygen status`` shows the same whichever server answered.

``Tail`` keeps the file open and reads what was appended since the last call, complete lines
only. A rotated file (the name now another inode) is read to its end first, then the new one
from its start; a truncated one (``copytruncate``) from its start, once it is shorter than what
was read (what a truncated file regrew to by then is lost). Where it stopped is recorded in the log
database with the sightings those lines gave, in one transaction (``record_sightings``), so a
restarted sidecar goes on from there and counts no request twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["LOG_FORMAT", "LOG_FORMAT_NAME", "LoggedRequest", "Tail", "parse_line", "source_of"]

log = logging.getLogger("polygen.accesslog")

LOG_FORMAT_NAME = "polygen_json"
# nginx variables, one JSON key each; $status is a number, the rest strings (escape=json)
LOG_FORMAT = ('{"time":"$time_iso8601","remote_addr":"$remote_addr","method":"$request_method",'
              '"uri":"$request_uri","status":$status,"user_agent":"$http_user_agent"}')
READ_LIMIT = 8 * 1024 * 1024  # bytes read per call, so one call after a long pause stays short


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    time: float  # unix seconds
    address: str | None
    method: str
    uri: str
    status: int
    user_agent: str | None


def parse_line(line: bytes) -> LoggedRequest | None:
    """One line of the JSON access log, or None if it is not one (another format, damaged)."""
    try:
        data = json.loads(line.decode("utf-8", errors="replace"))
        when = datetime.fromisoformat(data["time"]).timestamp()
        status = int(data["status"])
        method, uri = str(data["method"]), str(data["uri"])
    except (ValueError, KeyError, TypeError):
        return None
    return LoggedRequest(when, str(data.get("remote_addr") or "") or None, method, uri, status,
                         str(data.get("user_agent") or "") or None)


def source_of(path: Path) -> str:
    """The key of a log's read offset in a database several servers may share: host and path."""
    return f"{socket.gethostname()}:{Path(path).absolute()}"


class Tail:
    """Reads the lines appended to one access log (module docstring). Used from one thread at a
    time; ``read`` does blocking file I/O."""

    def __init__(self, path: Path, start: tuple[str, int] | None = None):
        self.path = Path(path).absolute()
        self.source = source_of(self.path)
        self._start = start  # (inode, position) read up to before, from the database
        self._file = None
        self._inode = ""
        self._missing_told = False
        self.bad_lines = 0

    @property
    def offset(self) -> tuple[str, str, int] | None:
        """``(source, inode, position)``: how far the open file has been read."""
        if self._file is None:
            return None
        return self.source, self._inode, self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open between reads
        except FileNotFoundError:
            if not self._missing_told:
                log.warning("nginx access log %s does not exist (yet): nginx writes it once it has requests",
                            self.path)
                self._missing_told = True
            return False
        except OSError as exc:
            if not self._missing_told:
                log.warning("cannot read nginx access log %s: %s", self.path, exc.strerror)
                self._missing_told = True
            return False
        self._missing_told = False
        st = os.fstat(fh.fileno())
        self._file, self._inode = fh, f"{st.st_dev}:{st.st_ino}"
        if self._start is not None:
            inode, position = self._start
            if inode == self._inode and position <= st.st_size:
                fh.seek(position)  # where the previous run stopped, in the same file
        self._start = None
        return True

    def read(self, limit: int = READ_LIMIT) -> list[LoggedRequest]:
        """The requests logged since the last call (at most about ``limit`` bytes of them)."""
        if self._file is None and not self._open():
            return []
        lines = self._read_lines(limit)
        if self._at_end() and self._rotated():  # the old file is read to its end: on to the new one
            self.close()
            if self._open():
                lines += self._read_lines(limit)
        requests = []
        for line in lines:
            request = parse_line(line)
            if request is None:
                if self.bad_lines == 0:
                    log.warning("%s: a line that is not polygen's JSON access log format (polygen nginx "
                                "--access-log writes it): %r", self.path, line[:120])
                self.bad_lines += 1
                continue
            requests.append(request)
        return requests

    def _read_lines(self, limit: int) -> list[bytes]:
        fh = self._file
        position = fh.tell()
        if os.fstat(fh.fileno()).st_size < position:  # truncated in place (copytruncate)
            fh.seek(0)
            position = 0
        chunk = fh.read(limit)
        end = chunk.rfind(b"\n")
        if end < 0:  # no complete line yet: read it again next time
            fh.seek(position)
            return []
        fh.seek(position + end + 1)
        return [line for line in chunk[:end].split(b"\n") if line.strip()]

    def _at_end(self) -> bool:
        return self._file.tell() >= os.fstat(self._file.fileno()).st_size

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return f"{st.st_dev}:{st.st_ino}" != self._inode
