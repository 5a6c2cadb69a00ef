"""The middlewares around every request but the guard's: requests in flight (for a graceful
stop) and errors as the one JSON shape (``polygen.sidecar.responses``)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from polygen.errors import LogStoreUnavailable
from polygen.sidecar import keys
from polygen.sidecar.responses import STORE_RETRY_AFTER, error_response

log = logging.getLogger("polygen.sidecar")


class InFlight:
    """Counts the requests being handled, so a stopping server can wait for them.

    aiohttp's own graceful shutdown stops reading from connections at once, so an upload whose
    body is still arriving would be cut off; ``run()`` instead closes the listening socket first,
    waits here until the count drops to zero (or the shutdown timeout), and only then shuts down.
    """

    def __init__(self):
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # per connection (aiohttp's protocol object): requests being handled, and since when it
        # has had none (polygen.sidecar.timeouts closes connections idle for too long)
        self.busy: dict[object, int] = {}
        self.idle_since: dict[object, float] = {}

    def enter(self, conn: object = None) -> None:
        self.count += 1
        self._idle.clear()
        if conn is not None:
            self.busy[conn] = self.busy.get(conn, 0) + 1
            self.idle_since.pop(conn, None)

    def leave(self, conn: object = None) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()
        if conn is not None:
            left = self.busy.pop(conn, 1) - 1
            if left > 0:
                self.busy[conn] = left
            else:
                self.idle_since[conn] = asyncio.get_running_loop().time()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


@web.middleware
async def inflight_middleware(request: web.Request, handler):
    inflight = request.app[keys.INFLIGHT]
    conn = request.protocol
    inflight.enter(conn)
    try:
        return await handler(request)
    finally:
        inflight.leave(conn)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text or exc.reason
        if message == f"{exc.status}: {exc.reason}":  # aiohttp's default text
            message = exc.reason
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() in ("allow", "retry-after", "www-authenticate")}
        return error_response(exc.status, message, headers or None)
    except LogStoreUnavailable as exc:
        # The database is down or unreachable: nothing was stored and nothing acknowledged; the
        # phone sends its log again later (the reason stays in our log: it names the server).
        log.warning("%s %s: %s", request.method, request.raw_path, exc)
        return error_response(503, "the log database is unavailable: try again later",
                              {"Retry-After": str(STORE_RETRY_AFTER)})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.raw_path)
        return error_response(500, "internal server error")
