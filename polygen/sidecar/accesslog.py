"""The access log and the sidecar's log format: one ``key=value`` line per request or record."""

from __future__ import annotations

import logging
import re

from aiohttp.abc import AbstractAccessLogger

from polygen.safetext import json_dumps
from polygen.sidecar import keys


def kv(value: object) -> str:
    """A value for a key=value log line: bare when safe, else double-quoted with escapes."""
    text = "" if value is None else str(value)
    if text and re.fullmatch(r"[A-Za-z0-9._:/@+-]+", text):
        return text
    return json_dumps(text)  # C0, C1 and DEL escaped: a User-Agent cannot drive a terminal


class KeyValueAccessLogger(AbstractAccessLogger):
    """One line per request, ``key=value`` (journald and log shippers split it without a grammar)."""

    def log(self, request, response, time: float) -> None:
        fields = {
            "method": request.method,
            "path": request.raw_path,
            "status": response.status,
            "bytes": response.body_length,
            "ms": f"{time * 1000:.1f}",
            "remote": request.remote,
            "ua": request.headers.get("User-Agent", ""),
        }
        notes = request.get(keys.NOTES) if hasattr(request, "get") else None
        if notes:
            fields.update(notes)
        self.logger.info(" ".join(f"{k}={kv(v)}" for k, v in fields.items()), extra={"kv": True})


class KeyValueFormatter(logging.Formatter):
    """``level=info logger=polygen.sidecar msg="…"``; access lines are already key=value."""

    def format(self, record: logging.LogRecord) -> str:
        head = f"level={record.levelname.lower()} logger={record.name}"
        if getattr(record, "kv", False):
            line = f"{head} {record.getMessage()}"
        else:
            line = f"{head} msg={kv(record.getMessage())}"
        if record.exc_info:
            line += f" exc={kv(self.formatException(record.exc_info))}"
        return line
