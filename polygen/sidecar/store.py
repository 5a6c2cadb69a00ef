"""The sidecar's log database writers, and the reader its health check asks.

A log store (``polygen.logdb.open_store``: SQLite or PostgreSQL) is one connection and not
thread-safe, so each writer thread of a ``ThreadPoolExecutor`` opens, uses and closes its own.
With SQLite there is one writer thread, which also serialises the writes (datasette's
write-thread pattern); with PostgreSQL a few, each with its connection, and the store keeps
uploads for the same phone apart, across threads and sidecars (``polygen.pgstore``). Handlers
``await`` their work on a writer. If a request is cancelled while its upload is being stored, the
transaction still runs to its end on the writer thread: an upload is stored whole or not at all.

``/healthz`` asks on a reader of its own (``open_reader``: SQLite read-only, which WAL lets read
while the writer writes; PostgreSQL a connection of its own), on a thread of its own, so a health
check never queues behind uploads being stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from polygen.errors import LogStoreError
from polygen.logdb import describe_db, is_postgres_url, open_reader, open_store
from polygen.logstore import BaseLogStore, StoredUpload
from polygen.sightings import Sighting

log = logging.getLogger("polygen.sidecar.store")
PG_WRITERS = 4  # writer threads (connections) per sidecar on PostgreSQL


class StoreWriter:
    """Async front of the log store: one store per writer thread, each opened, used and closed
    there. SQLite gets one writer (it stores one upload at a time anyway); PostgreSQL gets
    ``PG_WRITERS``, so uploads for different phones are stored in parallel and the database can
    commit them together (one phone's uploads still go one after the other, ``polygen.pgstore``).
    ``ping`` asks a reader store on a thread of its own."""

    def __init__(self, db: Path | str, writers: int | None = None):
        self.db = db  # a SQLite path or a PostgreSQL URL (open_store)
        self.name = describe_db(db)  # for messages: no password
        self.writers = writers or (PG_WRITERS if is_postgres_url(db) else 1)
        self._executor = ThreadPoolExecutor(max_workers=self.writers, thread_name_prefix="polygen-logstore")
        self._local = threading.local()  # .store: this writer thread's store
        self._stores: list[BaseLogStore] = []
        self._open = False
        self._reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polygen-logstore-read")
        self._reader: BaseLogStore | None = None  # opened on the reader thread at the first ping

    async def _call(self, method: str, *args, **kwargs):
        """``method`` of the calling writer thread's store, run on that thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._run, method, *args, **kwargs))

    def _run(self, method: str, *args, **kwargs):  # on a writer thread
        if not self._open:
            raise RuntimeError("the log store is not open")
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.db)
            self._stores.append(store)
        return getattr(store, method)(*args, **kwargs)

    async def open(self) -> StoreWriter:
        """Open the first store now: a database that cannot be opened stops the server at start."""
        self._open = True
        try:
            await self._call("ping")
        except BaseException:
            self._open = False
            raise
        return self

    async def close(self) -> None:
        self._open = False
        stores, self._stores = self._stores, []
        loop = asyncio.get_running_loop()
        for store in stores:
            # On a writer thread: SQLite's one thread is its store's own; a psycopg connection
            # may be closed from any thread.
            await loop.run_in_executor(self._executor, store.close)
        self._executor.shutdown(wait=True)
        await loop.run_in_executor(self._reader_executor, self._close_reader)
        self._reader_executor.shutdown(wait=True)

    async def store_upload(self, mac: str, kind: str, body: bytes, fw_version: str | None,
                           user_agent: str | None, max_lines: int | None = None,
                           extensions: Sequence[str] | None = None) -> StoredUpload:
        return await self._call("store_upload", mac, kind, body, fw_version, user_agent, max_lines=max_lines,
                                extensions=extensions)

    async def record_sightings(self, rows: Sequence[Sighting], offsets: Sequence[tuple[str, str, int]] = ()) -> None:
        await self._call("record_sightings", rows, offsets)

    async def tail_offset(self, source: str) -> tuple[str, int] | None:
        return await self._call("tail_offset", source)

    async def seen_macs(self) -> set[str] | None:
        """The MACs of every phone seen, asked on the reader (None: the database does not answer)."""
        return await self._read("seen_macs", None)

    async def prune(self, older_than_seconds: float) -> int:
        return await self._call("prune", older_than_seconds)

    async def ping(self) -> bool:
        """Does the database answer? Asked on the reader, never behind the writers."""
        return await self._read("ping", False)

    async def _read(self, method: str, failed):
        """``method`` of the reader store, on the reader thread; ``failed`` if the database does
        not answer."""
        if not self._open:
            return failed
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_executor, self._on_reader, method, failed)

    def _on_reader(self, method: str, failed):  # on the reader thread
        try:
            if self._reader is None:
                self._reader = open_reader(self.db)
            return getattr(self._reader, method)()
        except LogStoreError:
            return failed

    def _close_reader(self) -> None:  # on the reader thread
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    async def counts(self) -> tuple[int, int]:
        return await self._call("counts")
