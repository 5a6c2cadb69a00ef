"""Rebuild ``out/`` when the inventory, templates or firmware change.

MkDocs' shape (STYLE.md habit 6): watchdog callbacks only set a flag on a ``threading.Condition``;
one builder thread waits until there have been no events for ``quiet_period`` seconds, then calls
``build()``. A failed build logs every problem and changes nothing: the atomic writer leaves the
last good generation in place, and the sidecar keeps serving it. Events from ``out`` and the
``.<name>.gens`` staging directories are ignored so a build cannot trigger itself, and so are
open/close-without-write events (a build reading the inventory must not trigger the next one).

With ``--git`` the inventory's working tree is not watched at all: a probe thread asks git for
the commit (``git rev-parse``, a few milliseconds) every ``GIT_POLL`` seconds and a new one starts
the quiet period; templates and firmware are watched as files. Editors' saves, uncommitted
changes and the index do not matter; a commit goes live a second or so later.

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
GIT_POLL = 1.0  # seconds between two looks at the commit (--git)
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
        probe: Callable[[], object] | None = None,
        probe_interval: float = GIT_POLL,
    ):
        self.paths = [Path(p).absolute() for p in paths]
        self.build = build
        self.ignore = [Path(p).absolute() for p in ignore]
        self.quiet_period = quiet_period
        self.poll = poll
        self.initial_build = initial_build
        self.on_build = on_build
        self.probe = probe  # polled every probe_interval seconds; a new value is a change
        self.probe_interval = probe_interval
        self.builds = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._cond = threading.Condition()
        self._dirty = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer = None
        self._prober: threading.Thread | None = None
        self._probe_stop = threading.Event()

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
        if self.probe is not None:
            self._probe_stop.clear()
            first = self._probe_once()  # before the first build: what that build will see
            self._prober = threading.Thread(target=self._probe_loop, args=(first,), name="polygen-probe", daemon=True)
            self._prober.start()
        self._thread = threading.Thread(target=self._run, name="polygen-builder", daemon=True)
        self._thread.start()
        return self

    def _probe_once(self) -> object:
        try:
            return self.probe()
        except Exception as exc:  # a probe that fails keeps being asked; its repair is a change
            log.debug("probe failed: %s", exc)
            return ("failed", repr(exc))

    def _probe_loop(self, last: object) -> None:
        while not self._probe_stop.wait(self.probe_interval):
            value = self._probe_once()
            if value != last:
                log.debug("change: %r -> %r", last, value)
                last = value
                self.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; a build in progress is allowed to finish (up to ``timeout``)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._probe_stop.set()
        if self._prober is not None:
            self._prober.join(timeout)
            self._prober = None
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


def failure_summary(error: BaseException) -> str:
    """Why a build failed, in one line without the problems' details (/healthz shows it to
    anyone who asks; the log has the details)."""
    if isinstance(error, PolygenError):
        return error.format_message()
    return f"the build crashed ({type(error).__name__}); see the log"


def describe(result: object) -> str:
    """A one-line summary of a BuildResult (or whatever an injected build returned)."""
    fields = ("generation", "phones", "written", "unchanged", "removed")
    if getattr(result, "commit", None):
        fields += ("commit",)
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


def make_build(options, source=None) -> Callable[[], object]:
    """A ``build()`` for Watcher that runs ``polygen.build.run(options)`` (with a
    ``polygen.gitsource.GitSource``: the inventory as committed) and logs each warning once: when
    a build first has it. A first build that changes nothing logs none: the build that made that
    generation printed them (``make run``'s ``polygen build``), and its ``rebuilt:`` line counts
    them."""

    import dataclasses

    if dataclasses.is_dataclass(options) and hasattr(options, "keep_auth"):
        # an editor's half-written save must not unprovision half the site, nor open it to
        # anyone who knows a MAC (SECURITY.md); `polygen build` by hand confirms such a change.
        # Nor may a restart or a touched template quietly undo a `polygen rollback`.
        loss = options.max_phone_loss
        options = dataclasses.replace(options, keep_auth=True, keep_rollback=True,
                                      max_phone_loss=UNATTENDED_MAX_PHONE_LOSS if loss is None else loss)
    logged: set[str] | None = None  # the warnings of the last build; None before the first

    def build() -> object:
        nonlocal logged
        if source is not None:
            from polygen.gitsource import run as git_run

            result = git_run(options, source)
        else:
            from polygen.build import run

            result = run(options)
        if getattr(result, "held", False):
            log.info("%s", result.summary())
        warnings = tuple(getattr(result, "warnings", ()) or ())
        if logged is None and not getattr(result, "changed", True):
            logged = set(warnings)
        for warning in warnings:
            if logged is None or warning not in logged:
                log.warning("%s", warning)
        logged = set(warnings)
        return result

    return build


def watch_paths(options, git: bool = False) -> tuple[list[Path], list[Path]]:
    """(paths to watch, paths to ignore) for BuildOptions-like ``options``; with ``git`` the
    inventory is left to the probe (``git_probe``)."""
    out = Path(options.out)
    paths = ([] if git else [Path(options.inventory)]) + [Path(options.templates), Path(options.firmware)]
    ignore = [out, out.parent / f".{out.name}.gens"]
    return paths, ignore


def git_probe(options, source) -> Callable[[], object]:
    """The Watcher probe of a build from git: the commit, and the working tree's secrets file."""
    from polygen.gitsource import probe

    return lambda: probe(source, options.secrets)


def run(options, *, poll: bool = False, quiet_period: float = DEFAULT_QUIET_PERIOD, source=None,
        probe_interval: float = GIT_POLL) -> None:
    """``polygen watch``: build now, then on every change, until SIGINT/SIGTERM. ``source``: a
    ``polygen.gitsource.GitSource``, to build each new commit."""
    paths, ignore = watch_paths(options, git=source is not None)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watcher = Watcher(paths, make_build(options, source), ignore=ignore, quiet_period=quiet_period, poll=poll,
                      probe=git_probe(options, source) if source is not None else None,
                      probe_interval=probe_interval)
    watcher.start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
