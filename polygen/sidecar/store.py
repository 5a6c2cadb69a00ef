"""The sidecar's single SQLite writer.

``LogStore`` is not thread-safe (see ``polygen.logstore``), so the sidecar owns exactly one, opened,
used and closed on one dedicated thread: a ``ThreadPoolExecutor(max_workers=1)``, whose only worker
thread lives as long as the executor. Handlers ``await`` their work on it, which also serialises the
writes (datasette's write-thread pattern). If a request is cancelled while its upload is being
stored, the transaction still runs to its end on the writer thread: an upload is stored whole or
not at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from polygen.logstore import BUSY_TIMEOUT_MS, LogStore, StoredUpload

log = logging.getLogger("polygen.sidecar.store")
T = TypeVar("T")


class StoreWriter:
    """Async front of one ``LogStore`` that lives on one thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polygen-sqlite")
        self._store: LogStore | None = None
        self._reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polygen-sqlite-read")
        self._reader: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def open(self) -> StoreWriter:
        self._store = await self._call(LogStore.open, self.path)
        return self

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await self._call(store.close)
        self._executor.shutdown(wait=True)
        await asyncio.get_running_loop().run_in_executor(self._reader_executor, self._close_reader)
        self._reader_executor.shutdown(wait=True)

    @property
    def store(self) -> LogStore:
        if self._store is None:
            raise RuntimeError("the log store is not open")
        return self._store

    async def store_upload(self, mac: str, kind: str, body: bytes, fw_version: str | None,
                           user_agent: str | None, max_lines: int | None = None) -> StoredUpload:
        return await self._call(self.store.store_upload, mac, kind, body, fw_version, user_agent,
                                max_lines=max_lines)

    async def prune(self, older_than_seconds: float) -> int:
        return await self._call(self.store.prune, older_than_seconds)

    async def ping(self) -> bool:
        """Does the database answer? Asked on a reader connection of its own (WAL: readers do not
        wait for the writer), so a health check never queues behind uploads being stored."""
        if self._store is None:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_executor, self._ping_reader)

    def _ping_reader(self) -> bool:  # on the reader thread
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
                self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._reader.execute("SELECT count(*) FROM uploads WHERE 0").fetchone()
        except sqlite3.Error:
            return False
        return True

    def _close_reader(self) -> None:  # on the reader thread
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def counts(self) -> tuple[int, int]:
        return await self._call(self.store.counts)
