"""The sidecar's single log database writer.

A log store (``polygen.logstore.open_store``: SQLite or PostgreSQL) is one connection and not
thread-safe, so the sidecar owns exactly one, opened, used and closed on one dedicated thread: a ``ThreadPoolExecutor(max_workers=1)``, whose only worker
thread lives as long as the executor. Handlers ``await`` their work on it, which also serialises the
writes (datasette's write-thread pattern). If a request is cancelled while its upload is being
stored, the transaction still runs to its end on the writer thread: an upload is stored whole or
not at all. With PostgreSQL, several sidecars each have their own writer; the store keeps their
uploads for the same phone apart (``polygen.pgstore``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from polygen.logstore import BaseLogStore, StoredUpload, describe_db, open_store

log = logging.getLogger("polygen.sidecar.store")
T = TypeVar("T")


class StoreWriter:
    """Async front of one log store that lives on one thread."""

    def __init__(self, db: Path | str):
        self.db = db  # a SQLite path or a PostgreSQL URL (open_store)
        self.name = describe_db(db)  # for messages: no password
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polygen-logstore")
        self._store: BaseLogStore | None = None

    async def _call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def open(self) -> StoreWriter:
        self._store = await self._call(open_store, self.db)
        return self

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await self._call(store.close)
        self._executor.shutdown(wait=True)

    @property
    def store(self) -> BaseLogStore:
        if self._store is None:
            raise RuntimeError("the log store is not open")
        return self._store

    async def store_upload(self, mac: str, kind: str, body: bytes, fw_version: str | None,
                           user_agent: str | None) -> StoredUpload:
        return await self._call(self.store.store_upload, mac, kind, body, fw_version, user_agent)

    async def prune(self, older_than_seconds: float) -> int:
        return await self._call(self.store.prune, older_than_seconds)

    async def ping(self) -> bool:
        if self._store is None:
            return False
        return await self._call(self._store.ping)

    async def counts(self) -> tuple[int, int]:
        return await self._call(self.store.counts)
