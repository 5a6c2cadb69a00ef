"""The sidecar app factory, its configuration and ``run()`` (used by ``polygen serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from polygen.errors import LogStoreUnavailable, SidecarConfigError
from polygen.logdb import describe_db
from polygen.overrides import OverrideStore, default_dir
from polygen.sidecar import guard, handlers, keys, metrics, middleware, observe, timeouts
from polygen.sidecar.accesslog import KeyValueAccessLogger, KeyValueFormatter
from polygen.sidecar.outtree import OutTree
from polygen.sidecar.store import StoreWriter

log = logging.getLogger("polygen.sidecar")

DEFAULT_MAX_UPLOAD = 1024 * 1024
UNKNOWN_MAC_POLICIES = ("404", "accept")
DEFAULT_MISS_LIMIT = 20  # 404s per client address per minute (SECURITY.md: MAC guessing)
DEFAULT_UPLOAD_LIMIT = 30  # uploads per MAC per minute
DEFAULT_MAX_UPLOAD_LINES = 10_000  # log lines stored from one upload (SECURITY.md: uploads)
DEFAULT_LINE_LIMIT = 20_000  # log lines stored per MAC per hour
DEFAULT_HEADER_TIMEOUT = 15.0  # seconds for a request head to arrive (slow clients)
DEFAULT_BODY_TIMEOUT = 60.0  # seconds for an upload's whole body to arrive
DEFAULT_SIGHTINGS_FLUSH = 5.0  # seconds between writes of what the servers saw (polygen.sightings)


@dataclass(frozen=True)
class SidecarConfig:
    """Everything the sidecar needs; ``polygen serve`` builds one from its options."""

    out: Path  # the out symlink (resolved per request)
    db: Path | str  # log database: a SQLite file (created on first start) or a PostgreSQL URL
    inventory: Path | None = None  # informational (healthz); MACs come from the build's manifest
    static: bool = True  # also serve out/ read-only for GET/HEAD
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD  # enforced while streaming; over it: 413
    unknown_mac: str = "404"  # "404": only MACs the build knows may upload; "accept": any MAC
    retention: float | None = None  # seconds; prune older log rows on a schedule
    prune_interval: float = 3600.0  # seconds between scheduled prunes
    rebuild: Callable[[], object] | None = None  # with it, watch watch_paths and call it on change
    watch_paths: tuple[Path, ...] = ()
    watch_ignore: tuple[Path, ...] = ()
    poll: bool = False  # PollingObserver instead of the native one
    watch_probe: Callable[[], object] | None = None  # polled too: a new value is a change (--git: the commit)
    quiet_period: float = 0.3
    miss_limit: int = DEFAULT_MISS_LIMIT  # 404s (and wrong passwords) per client per window; 0: off
    miss_window: float = 60.0  # seconds
    upload_limit: int = DEFAULT_UPLOAD_LIMIT  # uploads per MAC per window, then 429; 0: off
    upload_window: float = 60.0  # seconds
    real_ip_from: tuple[str, ...] = ("127.0.0.1", "::1")  # proxies whose X-Real-IP is believed
    max_upload_lines: int = DEFAULT_MAX_UPLOAD_LINES  # lines stored from one upload; 0: off
    line_limit: int = DEFAULT_LINE_LIMIT  # lines stored per MAC per line_window, then 429; 0: off
    line_window: float = 3600.0  # seconds
    header_timeout: float = DEFAULT_HEADER_TIMEOUT  # a connection without a request head for this long is closed
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # an upload body not complete after this long: 408
    sightings_flush: float = DEFAULT_SIGHTINGS_FLUSH  # seconds between writes of the sightings
    nginx_log: Path | None = None  # nginx's JSON access log, read into sightings (polygen.accesslog)
    overrides_dir: Path | None = None  # the phones' override files; None: polygen-overrides beside the db

    def __post_init__(self):
        if self.unknown_mac not in UNKNOWN_MAC_POLICIES:
            raise SidecarConfigError(
                f"unknown_mac must be one of {', '.join(UNKNOWN_MAC_POLICIES)}, not {self.unknown_mac!r}"
            )
        if self.max_upload_bytes <= 0:
            raise SidecarConfigError("the upload cap must be a positive number of bytes")
        if self.retention is not None and self.retention <= 0:
            raise SidecarConfigError("the retention must be a positive duration")
        if self.prune_interval <= 0 or self.quiet_period < 0:
            raise SidecarConfigError("prune interval and quiet period must be positive")
        if min(self.miss_limit, self.upload_limit, self.line_limit, self.max_upload_lines) < 0:
            raise SidecarConfigError("rate limits must be 0 (off) or a positive number")
        if min(self.miss_window, self.upload_window, self.line_window) <= 0:
            raise SidecarConfigError("rate limit windows must be a positive number of seconds")
        if self.header_timeout <= 0 or self.body_timeout <= 0:
            raise SidecarConfigError("the header and body timeouts must be a positive number of seconds")
        if self.sightings_flush <= 0:
            raise SidecarConfigError("the sightings' flush interval must be a positive number of seconds")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", handlers.handle_healthz)
    app.router.add_get("/metrics", metrics.handle_metrics)
    app.router.add_get(guard.GUARD_PATH, guard.handle_guard)  # nginx in front asks these (guard.py)
    app.router.add_get(guard.MISS_PATH, guard.handle_miss)
    app.router.add_get(guard.UNAUTHORIZED_PATH, guard.handle_unauthorized)
    app.router.add_route("*", "/{tail:.*}", handlers.handle_any)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    writer = StoreWriter(app[keys.CONFIG].db)
    try:
        await writer.open()
    except BaseException:
        await writer.close()
        raise
    app[keys.STORE] = writer
    log.info("log database %s open", writer.name)
    yield
    await writer.close()


async def _prune_loop(app: web.Application) -> None:
    config = app[keys.CONFIG]
    while True:
        try:
            deleted = await app[keys.STORE].prune(config.retention)
            if deleted:
                log.info("pruned %d log rows older than %gs", deleted, config.retention)
        except LogStoreUnavailable as exc:
            log.warning("scheduled prune skipped: %s", exc)
        except Exception:
            log.exception("scheduled prune failed")
        await asyncio.sleep(config.prune_interval)


async def _overrides_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[keys.OVERRIDES]
    await asyncio.to_thread(store.prepare)  # a directory it cannot write stops the server at start
    log.info("override files in %s", store.root)
    yield


async def _pruner_ctx(app: web.Application) -> AsyncIterator[None]:
    task = None
    if app[keys.CONFIG].retention:
        task = asyncio.create_task(_prune_loop(app), name="polygen-prune")
    app[keys.PRUNER] = task
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _watcher_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    watcher = None
    if config.rebuild is not None:
        from polygen.watch import Watcher, failure_summary

        tree, last, rebuild, counts = app[keys.TREE], app[keys.REBUILD], config.rebuild, app[keys.METRICS]

        def build() -> object:
            served = tree.generation()  # what the outcome is about (a build by hand may swap meanwhile)
            try:
                result = rebuild()
            except BaseException as exc:
                last.record(failure_summary(exc), served)
                counts.build_failures.inc()
                raise
            last.record(None, served)
            counts.rebuilt_at = time.time()
            return result

        watcher = Watcher(config.watch_paths, build, ignore=config.watch_ignore,
                          quiet_period=config.quiet_period, poll=config.poll, probe=config.watch_probe)
        await asyncio.to_thread(watcher.start)
    app[keys.WATCHER] = watcher
    yield
    if watcher is not None:
        await asyncio.to_thread(watcher.stop)


def create_app(config: SidecarConfig) -> web.Application:
    # Outermost first: count the request; note what it says of a phone, with its final answer
    # (polygen.sidecar.observe); then the miss limiter (which sees the final status), then the
    # translation of errors into the one JSON shape.
    app = web.Application(middlewares=[middleware.inflight_middleware, observe.observe_middleware,
                                       guard.guard_middleware, middleware.error_middleware])
    app[keys.CONFIG] = config
    app[keys.GUARD] = guard.Guard(config)
    app[keys.HTPASSWD] = guard.Htpasswd()
    app[keys.INFLIGHT] = middleware.InFlight()
    app[keys.TREE] = OutTree(config.out)
    app[keys.REBUILD] = handlers.LastRebuild()
    app[keys.OBSERVER] = observe.Observer()
    app[keys.METRICS] = metrics.Metrics()
    app[keys.OVERRIDES] = OverrideStore(config.overrides_dir or default_dir(config.db))
    # cleanup runs in reverse: the watcher stops, then the pruner, the last sightings are
    # written, then the database closes.
    app.cleanup_ctx.extend([_store_ctx, _overrides_ctx, observe.observer_ctx, _pruner_ctx, _watcher_ctx])
    setup_routes(app)
    return app


def setup_logging(level: int = logging.INFO) -> None:
    """The server's own log lines go to stdout, one ``key=value`` line each."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("polygen")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("polygen.access").setLevel(logging.INFO)  # one line per request, even with -q


def run(config: SidecarConfig, host: str = "127.0.0.1", port: int = 8080,
        shutdown_timeout: float = 30.0, log_level: int = logging.INFO,
        on_listening: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight get ``shutdown_timeout`` seconds to finish.
    ``on_listening`` is called once the port is open."""
    setup_logging(log_level)
    asyncio.run(_serve(create_app(config), config, host, port, shutdown_timeout, on_listening))
    log.info("stopped")


def bind_error(exc: OSError, host: str, port: int) -> SidecarConfigError:
    """Why the server cannot listen, and what to do: no traceback for an everyday mistake."""
    other = port + 1 if port < 65535 else port - 1
    pick = f"pick another with --port or PORT={other} make run"
    if exc.errno == errno.EADDRINUSE:
        return SidecarConfigError(f"port {port} on {host} is in use; {pick}")
    if exc.errno == errno.EACCES:
        return SidecarConfigError(f"port {port} on {host} needs privileges this user does not have; {pick}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return SidecarConfigError(f"{host} is not an address of this machine; pick another with --host")
    return SidecarConfigError(f"cannot listen on {host} port {port}: {exc.strerror or exc}")


async def _serve(app: web.Application, config: SidecarConfig, host: str, port: int,
                 shutdown_timeout: float, on_listening: Callable[[], None] | None = None) -> None:
    # Not web.run_app: its graceful shutdown stops reading request bodies at once, which would cut
    # off an upload still arriving. Here SIGTERM first closes the listening socket, then waits for
    # the requests in flight (uploads included, bodies and all), then shuts the app down.
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("polygen.access"),
        access_log_class=KeyValueAccessLogger,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=config.header_timeout,
    )
    await runner.setup()
    timeouts.raise_open_files_limit()
    idle_closer = asyncio.create_task(timeouts.close_idle(runner.server, app[keys.INFLIGHT], config.header_timeout))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise bind_error(exc, host, port) from exc
        log.info("listening on http://%s:%d out=%s db=%s static=%s watch=%s", host, port,
                 config.out, describe_db(config.db), config.static, config.rebuild is not None)
        if on_listening is not None:
            on_listening()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        inflight = app[keys.INFLIGHT]
        log.info("stopping: no new connections, %d request(s) in flight", inflight.count)
        await site.stop()
        if not await inflight.wait_idle(shutdown_timeout):
            log.warning("%d request(s) still running after %gs; stopping anyway",
                        inflight.count, shutdown_timeout)
    finally:
        idle_closer.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
