"""What the sidecar records of each request: sightings of phones and the metrics' counts.

``observe_middleware`` sees every request and its final answer (refusals of the guard and of
the handlers included): a request that names a phone (``polygen.sightings.classify``) becomes a
sighting in the ``Observer``'s coalescer, and the metrics count uploads and refusals. The
coalescer is written to the log database every ``sightings_flush`` seconds, through the store's
writer, as one batch (``record_sightings``), and once more when the server stops. With
``nginx_log`` the same loop first reads what nginx logged since (``polygen.accesslog``), so the
requests nginx answered itself become sightings too, and records how far it read in the same
batch.

Requests answered 400 (not a plain path) or 429 (held back before anything was looked up) are
not sightings: they tell nothing about a phone, and a scanner's would fill the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from polygen import overrides
from polygen.errors import LogStoreError
from polygen.sidecar import keys
from polygen.sightings import Coalescer, classify, sighting

log = logging.getLogger("polygen.sidecar")

NOT_SIGHTINGS = (400, 429)
BATCH = 5000  # sightings per database transaction, so uploads wait at most one batch
# What nginx passes on to the sidecar, which sees it itself: uploads, the HEAD before one, and
# the fetches of the override files (polygen.nginx's locations).
_FORWARDED_RE = re.compile(r"(?:PUT /.*|HEAD /(?:logs/)?[0-9a-f]{12}-(?:boot|app)\.log"
                           rf"|(?:GET|HEAD) /{overrides.DIRECTORY}/[0-9a-f]{{12}}-(?:phone|web)\.cfg)", re.ASCII)


class Observer:
    """The sightings waiting for their write, and the nginx log being read (module docstring)."""

    def __init__(self, coalescer: Coalescer | None = None):
        self.coalescer = coalescer or Coalescer()
        self.tail = None  # polygen.accesslog.Tail with --nginx-log
        self.recorded: tuple[str, str, int] | None = None  # the tail's offset last written
        self._dropped_told = 0

    def note(self, *, method: str, path: str, user_agent: str | None, status: int, address: str | None,
             when: float, known: Callable[[], frozenset[str]]) -> None:
        """One request; ``known()``: the MACs of the served build (asked only for a phone)."""
        if status in NOT_SIGHTINGS:
            return
        found = classify(method, path, user_agent)
        if found is None:
            return
        mac, kind, ua = found
        self.coalescer.add(sighting(mac, kind, ua, when=when, address=address, method=method, path=path,
                                    status=status, user_agent=user_agent), known=mac in known())

    def pending_macs(self) -> set[str]:
        return {mac for mac, _ in self.coalescer._pending}

    def take_dropped(self) -> int:
        """Sightings dropped since the last call."""
        dropped, self._dropped_told = self.coalescer.dropped - self._dropped_told, self.coalescer.dropped
        return dropped


@web.middleware
async def observe_middleware(request: web.Request, handler):
    response = await handler(request)
    app = request.app
    notes = request.get(keys.NOTES) or {}
    app[keys.METRICS].count_request(request.method, response.status, notes)
    app[keys.OBSERVER].note(method=request.method, path=request.raw_path,
                            user_agent=request.headers.get("User-Agent"), status=response.status,
                            address=app[keys.GUARD].address(request), when=time.time(),
                            known=lambda: _served_macs(app, request.get(keys.GENERATION)))
    return response


def _served_macs(app: web.Application, gen=None) -> frozenset[str]:
    """The phones of the generation a request was served from, else of the current one."""
    tree = app[keys.TREE]
    gen = gen or tree.generation()
    return tree.manifest(gen).macs if gen is not None else frozenset()


async def flush(app: web.Application) -> None:
    """Read the nginx log (if any), then write the waiting sightings and how far it was read."""
    observer = app[keys.OBSERVER]
    tail = observer.tail
    if tail is not None:
        requests = await asyncio.to_thread(tail.read)
        served = _served_macs(app)
        for r in requests:
            if _FORWARDED_RE.fullmatch(f"{r.method} {r.uri}"):
                continue
            observer.note(method=r.method, path=r.uri, user_agent=r.user_agent, status=r.status,
                          address=r.address, when=r.time, known=lambda: served)
    rows = observer.coalescer.drain()
    offset = tail.offset if tail is not None else None
    if offset == observer.recorded:
        offset = None  # nothing read since the last write
    store = app[keys.STORE]
    for start in range(0, max(len(rows), 1), BATCH):
        batch = rows[start:start + BATCH]
        offsets = [offset] if offset is not None and start + BATCH >= len(rows) else []
        if not batch and not offsets:
            return
        try:
            await store.record_sightings(batch, offsets)
        except LogStoreError as exc:
            observer.coalescer.restore(rows[start:])
            log.warning("sightings not written yet (%d rows waiting): %s", len(rows) - start, exc)
            return
    if offset is not None:
        observer.recorded = offset


async def _flush_loop(app: web.Application, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await flush(app)
        except Exception:
            log.exception("writing sightings failed")


async def observer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the flush loop (and the nginx log's reader); on the way out, one last flush before
    the store closes (cleanup runs in reverse: this context comes after the store's)."""
    config = app[keys.CONFIG]
    observer = app[keys.OBSERVER]
    if config.nginx_log is not None:
        from polygen.accesslog import Tail, source_of

        source = source_of(config.nginx_log)
        observer.tail = Tail(config.nginx_log, await app[keys.STORE].tail_offset(source))
    task = asyncio.create_task(_flush_loop(app, config.sightings_flush), name="polygen-sightings")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        await flush(app)
    except Exception:
        log.exception("writing the last sightings failed")
    if observer.tail is not None:
        observer.tail.close()
