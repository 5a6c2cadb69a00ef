"""Slow clients: connections that send no request head in time are closed (SECURITY.md).

aiohttp's ``keepalive_timeout`` closes a connection idle between requests, but whether it also
covers a connection that never completes its first request head depends on the aiohttp release.
``close_idle`` does not depend on it: every connection with no request being handled (see
``middleware.InFlight``) for ``header_timeout`` seconds, counted from when it was first seen or
from the end of its last request, is closed, however many header bytes it trickles in. Upload
bodies have their own deadline in the upload handler.
"""

from __future__ import annotations

import asyncio
import logging
import resource

log = logging.getLogger("polygen.sidecar")

MAX_OPEN_FILES = 65536


async def close_idle(server, inflight, header_timeout: float) -> None:
    """Forever: close the connections of ``server`` (an aiohttp ``web.Server``) idle too long."""
    loop = asyncio.get_running_loop()
    tick = min(1.0, header_timeout / 4)
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        live = set(server.connections)
        for conn in list(inflight.idle_since):
            if conn not in live:
                del inflight.idle_since[conn]
        closed = 0
        for conn in live:
            if conn in inflight.busy:
                continue
            since = inflight.idle_since.setdefault(conn, now)
            if now - since >= header_timeout:
                del inflight.idle_since[conn]
                conn.force_close()  # closes the transport too
                closed += 1
        if closed:
            log.info("closed %d connection(s) without a request for %gs", closed, header_timeout)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one (at most MAX_OPEN_FILES).

    Each client connection is a file descriptor; systemd's default soft limit (1024) would let a
    thousand idle sockets lock everyone else out until the header timeout closes them.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError):
            pass
    return soft
