"""Rebuild ``out/`` when the inventory, templates or firmware change.

MkDocs' shape (STYLE.md habit 6): watchdog callbacks only set a flag on a ``threading.Condition``;
one builder thread waits until there have been no events for ``quiet_period`` seconds, then calls
``build()``. A failed build logs every problem and changes nothing: the atomic writer leaves the
last good generation in place, and the sidecar keeps serving it. Events from ``out`` and the
``.<name>.gens`` staging directories are ignored so a build cannot trigger itself, and so are
open/close-without-write events (a build reading the inventory must not trigger the next one).

``build`` is injectable, so tests drive the loop with events and ``threading.Event`` waits.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from polygen.errors import InventoryError, PolygenError

log = logging.getLogger("polygen.watch")

DEFAULT_QUIET_PERIOD = 0.3
OBSERVER_CHECK = 5.0  # seconds between checks that the observer thread is alive
UNATTENDED_MAX_PHONE_LOSS = 0.5
_GENS_RE = re.compile(r"\..*\.gens")
_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})


def _is_editor_noise(name: str) -> bool:
    return name.endswith(("~", ".swp", ".swx", ".tmp")) or name.startswith(".#")


class Watcher:
    """Watch ``paths`` (recursively) and call ``build()`` after each quiet period that follows changes.

    ``on_build(result, error)`` is called after every build attempt, on the builder thread.
    """

    def __init__(
        self,
        paths: Iterable[Path],
        build: Callable[[], object],
        *,
        ignore: Iterable[Path] = (),
        quiet_period: float = DEFAULT_QUIET_PERIOD,
        poll: bool = False,
        initial_build: bool = True,
        on_build: Callable[[object, BaseException | None], None] | None = None,
    ):
        self.paths = [Path(p).absolute() for p in paths]
        self.build = build
        self.ignore = [Path(p).absolute() for p in ignore]
        self.quiet_period = quiet_period
        self.poll = poll
        self.initial_build = initial_build
        self.on_build = on_build
        self.builds = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._cond = threading.Condition()
        self._dirty = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer = None

    # ------------------------------------------------------------------ events
    def ignored(self, path: str | Path) -> bool:
        """True for paths whose changes must not trigger a build."""
        p = Path(path)
        if any(_GENS_RE.fullmatch(part) for part in p.parts):
            return True
        if _is_editor_noise(p.name):
            return True
        return any(p == ig or p.is_relative_to(ig) for ig in self.ignore)

    def notify(self, path: str | Path | None = None) -> None:
        """Something changed: (re)start the quiet period. Called from observer threads and tests."""
        if path is not None and self.ignored(path):
            return
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def _handler(self):
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in _IGNORED_EVENT_TYPES:
                    return
                if event.is_directory and event.event_type == "modified":
                    return  # a change inside also arrives as its own event, with its own path
                paths = [event.src_path, getattr(event, "dest_path", "") or ""]
                paths = [p.decode() if isinstance(p, bytes) else p for p in paths if p]
                if paths and all(watcher.ignored(p) for p in paths):
                    return
                log.debug("change: %s %s", event.event_type, " -> ".join(paths))
                watcher.notify()

        return Handler()

    # ------------------------------------------------------------------ lifecycle
    def _start_observer(self):
        if self.poll:
            from watchdog.observers.polling import PollingObserver as Observer
        else:
            from watchdog.observers import Observer
        observer = Observer()
        handler = self._handler()
        for path in self.paths:
            if path.is_dir():
                observer.schedule(handler, str(path), recursive=True)
                log.info("watching %s", path)
            else:
                log.warning("not watching %s: not a directory", path)
        observer.start()
        return observer

    def start(self) -> Watcher:
        self._observer = self._start_observer()
        self._thread = threading.Thread(target=self._run, name="polygen-builder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; a build in progress is allowed to finish (up to ``timeout``)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the builder thread
    def _run(self) -> None:
        with self._cond:
            self._dirty = self._dirty or self.initial_build
            while True:
                if not self._cond.wait_for(lambda: self._dirty or self._stopping, timeout=OBSERVER_CHECK):
                    self._supervise()
                    continue
                if self._stopping:
                    return
                # Debounce: build only after quiet_period without a new event.
                while True:
                    self._dirty = False
                    if not self._cond.wait_for(lambda: self._dirty or self._stopping,
                                               timeout=self.quiet_period):
                        break
                    if self._stopping:
                        return
                self._cond.release()
                try:
                    self._build_once()
                finally:
                    self._cond.acquire()

    def _supervise(self) -> None:
        """A watcher whose observer thread died would stop rebuilding without a word: restart it,
        and rebuild, since changes may have been missed meanwhile. (Called with the lock held.)"""
        observer = self._observer
        if observer is None or observer.is_alive() or self._stopping:
            return
        log.error("the file watcher stopped; restarting it and rebuilding")
        try:
            self._observer = self._start_observer()
        except Exception:
            log.exception("cannot restart the file watcher; retrying in %s s", OBSERVER_CHECK)
            return
        self._dirty = True

    def _build_once(self) -> None:
        result, error = None, None
        try:
            result = self.build()
        except InventoryError as exc:
            error = exc
            log.error("build failed: %s; still serving the last good build", exc.format_message())
            for problem in exc.problems:
                level = logging.WARNING if getattr(problem, "severity", "error") == "warning" else logging.ERROR
                log.log(level, "%s", problem)
        except PolygenError as exc:
            error = exc
            log.error("build failed: %s; still serving the last good build", exc.format_message())
        except Exception as exc:
            error = exc
            log.exception("build crashed; still serving the last good build")
        else:
            log.info("rebuilt: %s", describe(result))
        self.builds += 1
        if error is not None:
            self.failures += 1
        self.last_error = error
        if self.on_build is not None:
            try:
                self.on_build(result, error)
            except Exception:
                log.exception("on_build callback failed")


def describe(result: object) -> str:
    """A one-line summary of a BuildResult (or whatever an injected build returned)."""
    fields = ("generation", "phones", "written", "unchanged", "removed")
    parts = []
    for name in fields:
        if hasattr(result, name):
            value = getattr(result, name)
            if isinstance(value, (list, tuple, set, frozenset, dict)):
                value = len(value)
            parts.append(f"{name}={value}")
    if getattr(result, "warnings", None):
        parts.append(f"warnings={len(result.warnings)}")
    return " ".join(parts) if parts else repr(result)


def make_build(options) -> Callable[[], object]:
    """A ``build()`` for Watcher that runs ``polygen.build.run(options)`` and logs each warning
    once: when a build first has it. A first build that changes nothing logs none: the build that
    made that generation printed them (``make run``'s ``polygen build``), and its ``rebuilt:``
    line counts them."""

    import dataclasses

    if dataclasses.is_dataclass(options) and getattr(options, "max_phone_loss", None) is None:
        # an editor's half-written save must not unprovision half the site (SECURITY.md)
        options = dataclasses.replace(options, max_phone_loss=UNATTENDED_MAX_PHONE_LOSS)
    logged: set[str] | None = None  # the warnings of the last build; None before the first

    def build() -> object:
        nonlocal logged
        from polygen.build import run

        result = run(options)
        warnings = tuple(getattr(result, "warnings", ()) or ())
        if logged is None and not getattr(result, "changed", True):
            logged = set(warnings)
        for warning in warnings:
            if logged is None or warning not in logged:
                log.warning("%s", warning)
        logged = set(warnings)
        return result

    return build


def watch_paths(options) -> tuple[list[Path], list[Path]]:
    """(paths to watch, paths to ignore) for BuildOptions-like ``options``."""
    out = Path(options.out)
    paths = [Path(options.inventory), Path(options.templates), Path(options.firmware)]
    ignore = [out, out.parent / f".{out.name}.gens"]
    return paths, ignore


def run(options, *, poll: bool = False, quiet_period: float = DEFAULT_QUIET_PERIOD) -> None:
    """``polygen watch``: build now, then on every change, until SIGINT/SIGTERM."""
    paths, ignore = watch_paths(options)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watcher = Watcher(paths, make_build(options), ignore=ignore, quiet_period=quiet_period, poll=poll)
    watcher.start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
