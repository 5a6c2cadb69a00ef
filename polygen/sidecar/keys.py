"""Typed application keys: every piece of state the sidecar keeps lives on the app under one of these."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from pathlib import Path

    from polygen.overrides import OverrideStore
    from polygen.sidecar.app import SidecarConfig
    from polygen.sidecar.guard import Guard, Htpasswd
    from polygen.sidecar.handlers import LastRebuild
    from polygen.sidecar.metrics import Metrics
    from polygen.sidecar.middleware import InFlight
    from polygen.sidecar.observe import Observer
    from polygen.sidecar.outtree import OutTree
    from polygen.sidecar.store import StoreWriter
    from polygen.watch import Watcher

CONFIG: web.AppKey[SidecarConfig] = web.AppKey("config")
STORE: web.AppKey[StoreWriter] = web.AppKey("store")
TREE: web.AppKey[OutTree] = web.AppKey("tree")
WATCHER: web.AppKey[Watcher | None] = web.AppKey("watcher")
REBUILD: web.AppKey[LastRebuild] = web.AppKey("rebuild")
INFLIGHT: web.AppKey[InFlight] = web.AppKey("inflight")
PRUNER: web.AppKey[asyncio.Task | None] = web.AppKey("pruner")
GUARD: web.AppKey[Guard] = web.AppKey("guard")
HTPASSWD: web.AppKey[Htpasswd] = web.AppKey("htpasswd")
OBSERVER: web.AppKey[Observer] = web.AppKey("observer")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
OVERRIDES: web.AppKey[OverrideStore] = web.AppKey("overrides")

# Per request: extra key=value fields for the access log line (mac, kind, lines, served file...).
NOTES: web.RequestKey[dict] = web.RequestKey("notes", dict)
# Per request: the generation it is served from, resolved once (a request never mixes two).
GENERATION: web.RequestKey[Path] = web.RequestKey("generation", object)
# Per request, set by a handler that knows better than the name: does its 404 take a miss token
# (polygen.sidecar.guard)? True: a name every phone asks for at boot; False: a MAC guess.
MISS_FREE: web.RequestKey[bool] = web.RequestKey("miss_free", bool)
