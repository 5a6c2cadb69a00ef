"""polygen.watch: debounced rebuilds driven by events (no sleeps to make things happen), ignored
paths, failures that keep the last good build, and a real build of a broken then fixed inventory."""

from __future__ import annotations

import logging
import os
import threading

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.errors import InventoryError, PolygenError
from polygen.watch import Watcher, describe, make_build, watch_paths

WAIT = 10.0  # generous upper bound for something that must happen
QUIET = 0.5  # how long we wait to be sure something did NOT happen


class Recorder:
    """An injectable build: counts calls, optionally fails, and signals each call."""

    def __init__(self, fail=None):
        self.calls = 0
        self.fail = fail
        self.called = threading.Event()
        self.results: list[tuple[object, BaseException | None]] = []
        self.done = threading.Event()

    def __call__(self):
        self.calls += 1
        self.called.set()
        if self.fail is not None:
            raise self.fail
        return f"build {self.calls}"

    def on_build(self, result, error):
        self.results.append((result, error))
        self.done.set()

    def wait(self) -> bool:
        ok = self.done.wait(WAIT)
        self.done.clear()
        return ok


@pytest.fixture
def dirs(tmp_path):
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "site.yaml").write_text("site: {}\n")
    return inv


def make_watcher(paths, rec: Recorder, **kw) -> Watcher:
    kw.setdefault("quiet_period", 0.05)
    kw.setdefault("initial_build", False)
    return Watcher(paths, rec, on_build=rec.on_build, **kw)


def test_initial_build(dirs):
    rec = Recorder()
    with make_watcher([dirs], rec, initial_build=True):
        assert rec.wait()
    assert rec.results == [("build 1", None)]


def test_burst_of_events_gives_one_build(dirs):
    rec = Recorder()
    # a quiet period long enough that the burst below certainly falls inside it
    with make_watcher([dirs], rec, quiet_period=0.5) as w:
        for _ in range(20):
            w.notify()
        assert rec.wait()
        assert not rec.done.wait(QUIET + 0.5)
    assert rec.calls == 1


def test_events_during_a_build_give_one_more_build(dirs):
    entered, release = threading.Event(), threading.Event()
    calls = []

    def build():
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            release.wait(WAIT)
        return len(calls)

    done = threading.Event()
    w = Watcher([dirs], build, quiet_period=0.05, initial_build=True,
                on_build=lambda r, e: r == 2 and done.set())
    with w:
        assert entered.wait(WAIT)
        w.notify()
        w.notify()
        release.set()
        assert done.wait(WAIT)
    assert len(calls) == 2


def test_file_change_triggers_build(dirs):
    rec = Recorder()
    with make_watcher([dirs], rec):
        (dirs / "phones.yaml").write_text("phones: []\n")
        assert rec.wait()


def test_a_new_probe_value_triggers_a_build_and_the_same_one_does_not(dirs):
    """--git's probe: polled, a build when its value changes (the commit), none while it stays;
    a probe that raises keeps being asked, and its repair is a change."""
    value = ["c1"]
    asked = threading.Event()

    def probe():
        asked.set()
        if value[0] is None:
            raise OSError("git is gone")
        return value[0]

    rec = Recorder()
    with make_watcher([], rec, probe=probe, probe_interval=0.02):
        for _ in range(3):  # polled, unchanged: nothing to build
            asked.clear()
            assert asked.wait(WAIT)
        assert rec.calls == 0
        value[0] = "c2"
        assert rec.wait()
        value[0] = None
        assert rec.wait()  # an error is a change too
        value[0] = "c2"
        assert rec.wait()
    assert rec.calls == 3


def test_polling_observer(dirs):
    rec = Recorder()
    with make_watcher([dirs], rec, poll=True):
        (dirs / "phones.yaml").write_text("phones: []\n")
        assert rec.wait()


def test_ignored_paths(tmp_path, dirs):
    # out/ and the generations directory inside a watched directory must not trigger builds
    out = dirs / "out"
    rec = Recorder()
    w = make_watcher([dirs], rec, ignore=[out])
    assert w.ignored(out / "site.cfg")
    assert w.ignored(dirs / ".out.gens" / "g000001" / "site.cfg")
    assert w.ignored(dirs / "phones.yaml~")
    assert w.ignored(dirs / ".#phones.yaml")
    assert not w.ignored(dirs / "phones.yaml")
    with w:
        (dirs / ".out.gens" / "g000001").mkdir(parents=True)
        (dirs / ".out.gens" / "g000001" / "site.cfg").write_text("x")
        out.mkdir()
        (out / "site.cfg").write_text("x")
        assert not rec.done.wait(QUIET)
        (dirs / "phones.yaml").write_text("phones: []\n")  # a real change still works
        assert rec.wait()
    assert rec.calls == 1


def test_reading_inputs_does_not_retrigger(dirs):
    """A build reads the inventory (open/close events): that must not cause the next build."""
    rec = Recorder()

    def build():
        for p in dirs.iterdir():
            p.read_bytes()
        return rec()

    w = Watcher([dirs], build, quiet_period=0.05, initial_build=True, on_build=rec.on_build)
    with w:
        assert rec.wait()
        assert not rec.done.wait(QUIET)
    assert rec.calls == 1


def test_missing_directory_is_skipped(tmp_path, dirs, caplog):
    rec = Recorder()
    with caplog.at_level(logging.WARNING, "polygen.watch"):
        with make_watcher([dirs, tmp_path / "firmware"], rec, initial_build=True):
            assert rec.wait()
    assert f"not watching {tmp_path / 'firmware'}: not a directory" in caplog.messages


class FakeProblem:
    def __init__(self, text, severity="error"):
        self.text, self.severity = text, severity

    def __str__(self):
        return self.text


def test_failures_are_logged_and_watching_continues(dirs, caplog):
    problems = [FakeProblem("inventory/phones.yaml:3: phones[0].mac: invalid MAC 'zz'"),
                FakeProblem("inventory/phones.yaml:7: phones[1].model: unknown model 'VVX999'"),
                FakeProblem("inventory/site.yaml:1: site: unknown key 'tz'", "warning")]
    rec = Recorder(fail=InventoryError("the inventory has 2 errors", problems))
    with caplog.at_level(logging.INFO, "polygen.watch"):
        with make_watcher([dirs], rec, initial_build=True) as w:
            assert rec.wait()
            assert (w.builds, w.failures) == (1, 1)
            rec.fail = PolygenError("writing out failed: no space left on the device")
            w.notify()
            assert rec.wait()
            rec.fail = RuntimeError("bug")
            w.notify()
            assert rec.wait()
            rec.fail = None
            w.notify()
            assert rec.wait()
            assert (w.builds, w.failures, w.last_error) == (4, 3, None)
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "polygen.watch"]
    assert ("ERROR", "build failed: the inventory has 2 errors; still serving the last good build") in records
    assert ("ERROR", "inventory/phones.yaml:3: phones[0].mac: invalid MAC 'zz'") in records
    assert ("ERROR", "inventory/phones.yaml:7: phones[1].model: unknown model 'VVX999'") in records
    assert ("WARNING", "inventory/site.yaml:1: site: unknown key 'tz'") in records
    assert ("ERROR", "build failed: writing out failed: no space left on the device; "
                     "still serving the last good build") in records
    assert ("ERROR", "build crashed; still serving the last good build") in records
    assert ("INFO", "rebuilt: 'build 4'") in records


def test_describe():
    from polygen.build import BuildResult

    r = BuildResult(phones=4, written=3, unchanged=20, removed=1, generation="g000002", changed=True)
    assert describe(r) == "generation=g000002 phones=4 written=3 unchanged=20 removed=1"


def test_describe_counts_warnings():
    from polygen.build import BuildResult

    r = BuildResult(phones=4, written=0, unchanged=13, removed=0, generation="g000001", changed=False,
                    warnings=("a", "b"))
    assert describe(r) == "generation=g000001 phones=4 written=0 unchanged=13 removed=0 warnings=2"


def test_each_warning_is_logged_once(build_opts, tmp_path, caplog):
    """`make run` builds, then serves with --watch: the server's first build changes nothing and
    must not repeat the warnings the build printed; later builds log only warnings that are new."""
    import dataclasses

    from polygen.build import run

    opts = dataclasses.replace(build_opts, firmware=tmp_path / "no-firmware")
    exts = opts.inventory / "extensions.yaml"  # the conference room's line goes on a second phone too
    exts.write_text(exts.read_text().replace('secret: "s3cret-1099"\n', 'secret: "s3cret-1099"\n    shared: true\n'))
    printed = run(opts).warnings  # what `polygen build` printed
    assert any(w.startswith("firmware/3.3.5/sip.ld not found") for w in printed)

    def logged(build) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, "polygen.watch"):
            build()
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    build = make_build(opts)
    assert logged(build) == []  # nothing changed: printed already
    phones = opts.inventory / "phones.yaml"
    phones.write_text(phones.read_text().replace('lines: ["1002"]', 'lines: ["1002", "1099"]'))
    assert logged(build) == []  # a change, the same warnings
    phones.write_text(phones.read_text().replace("up.backlight.idleIntensity", "up.backlight.idleIntensty"))
    new = logged(build)
    assert len(new) == 1 and "up.backlight.idleIntensty" in new[0]
    assert logged(build) == []

    fresh = make_build(opts)  # a server started after an edit nobody built: its first build reports all
    phones.write_text(phones.read_text().replace('lines: ["1002", "1099"]', 'lines: ["1002"]'))
    assert sorted(logged(fresh)) == sorted(printed + tuple(new))


# ---------------------------------------------------------------------------- a real build
class Outcomes:
    """``on_build`` for a Watcher running real builds; ``next()`` waits for the next (result, error)."""

    def __init__(self):
        self.results: list = []
        self.done = threading.Event()

    def on_build(self, result, error):
        self.results.append((result, error))
        self.done.set()

    def next(self):
        assert self.done.wait(WAIT)
        self.done.clear()
        return self.results[-1]


def test_real_build_broken_then_fixed(build_opts, caplog):
    """The example inventory: a broken edit keeps the last good out/, the fix builds again."""
    paths, ignore = watch_paths(build_opts)
    outcomes = Outcomes()
    next_result = outcomes.next
    phones = build_opts.inventory / "phones.yaml"
    original = phones.read_text()
    with caplog.at_level(logging.INFO, "polygen.watch"):
        with Watcher(paths, make_build(build_opts), ignore=ignore, quiet_period=0.1,
                     on_build=outcomes.on_build):
            result, error = next_result()  # the initial build
            assert error is None and result.generation == "g000001"
            out = build_opts.out
            good = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
            target = os.readlink(out)

            phones.write_text(original.replace("model: VVX410", "model: VVX999"))
            result, error = next_result()
            assert isinstance(error, InventoryError)
            assert os.readlink(out) == target  # out/ untouched: the last good build is served
            assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == good

            phones.write_text(original.replace('lines: ["1002"]', 'lines: ["1002"]\n    timezone: Europe/Berlin'))
            result, error = next_result()
            assert error is None and result.generation == "g000002"
            assert os.readlink(out) != target
    messages = [r.getMessage() for r in caplog.records if r.name == "polygen.watch"]
    assert any("VVX999" in m and "phones.yaml" in m for m in messages), messages
    assert any(m.startswith("rebuilt: generation=g000002") for m in messages), messages


def test_sidecar_watch_rebuilds(tmp_path):
    """SidecarConfig.rebuild starts a watcher with the app and stops it with the app."""
    import asyncio

    from aiohttp.test_utils import TestServer

    from polygen.sidecar import SidecarConfig, create_app

    inv = tmp_path / "inventory"
    inv.mkdir()
    built = threading.Event()
    config = SidecarConfig(out=tmp_path / "out", db=tmp_path / "logs.db", rebuild=built.set,
                           watch_paths=(inv,), quiet_period=0.05)

    async def main():
        server = TestServer(create_app(config))
        await server.start_server()
        try:
            assert await asyncio.to_thread(built.wait, WAIT)  # the initial build
            built.clear()
            (inv / "phones.yaml").write_text("phones: []\n")
            assert await asyncio.to_thread(built.wait, WAIT)
        finally:
            await server.close()

    asyncio.run(main())


def test_watch_command_help():
    result = CliRunner().invoke(cli, ["watch", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "POLYGEN_WATCH_POLL" in result.output
    assert "POLYGEN_INVENTORY" in result.output


@pytest.mark.parametrize("save", ["emptied", "deleted"])
def test_watch_refuses_to_drop_most_phones(build_opts, caplog, save):
    """An emptied or deleted phones file is valid YAML for a smaller site; an unattended rebuild
    refuses to unprovision most of the phones, and `polygen build` by hand still can."""
    from polygen.build import run
    from polygen.errors import BuildError

    paths, ignore = watch_paths(build_opts)
    outcomes = Outcomes()
    phones = build_opts.inventory / "phones.yaml"
    with Watcher(paths, make_build(build_opts), ignore=ignore, quiet_period=0.1, on_build=outcomes.on_build):
        assert outcomes.next()[1] is None  # the initial build
        target = os.readlink(build_opts.out)
        if save == "emptied":
            phones.write_text("")
        else:
            phones.unlink()
        result, error = outcomes.next()
        assert isinstance(error, BuildError)
        assert str(error.message).startswith("refusing to remove 4 of 4 phones in one unattended rebuild")
        assert os.readlink(build_opts.out) == target
        assert (build_opts.out / "64167f000410-phone.cfg").is_file()
    assert run(build_opts).removed > 4  # deliberate: the same change by hand is applied


def test_a_dead_observer_is_restarted_and_a_rebuild_follows(dirs, monkeypatch, caplog):
    import polygen.watch

    monkeypatch.setattr(polygen.watch, "OBSERVER_CHECK", 0.1)
    rec = Recorder()
    with caplog.at_level(logging.ERROR, "polygen.watch"):
        with make_watcher([dirs], rec) as w:
            dead = w._observer
            dead.stop()  # as if its thread had crashed
            dead.join(WAIT)
            assert rec.wait()  # the supervisor restarted it and rebuilt (changes may have been missed)
            assert w._observer is not dead and w._observer.is_alive()
            (dirs / "phones.yaml").write_text("phones: []\n")  # and changes are seen again
            assert rec.wait()
    assert "the file watcher stopped; restarting it and rebuilding" in caplog.text


AUTH = '  provisioning_auth:\n    user: phones-a\n    password: "Wq7-first-pass"\n'
AUTH_EDITS = {
    "turn provisioning auth off": lambda text: text.replace(AUTH, ""),
    "change the provisioning user": lambda text: text.replace("user: phones-a", "user: phones-b"),
    "turn provisioning auth off (cut)": lambda text: text[:text.index("  provisioning_auth:")],  # a cut save
}


@pytest.mark.parametrize("edit", sorted(AUTH_EDITS))
def test_watch_refuses_to_weaken_provisioning_auth(build_opts, edit):
    """A save that turns auth off or changes its user (half-saved, or on purpose) is refused by
    the unattended rebuild: the last build, .htpasswd and all, stays served. `polygen build` by
    hand confirms the change, and the watch carries on from there."""
    from polygen.build import run
    from polygen.errors import BuildError

    site = build_opts.inventory / "site.yaml"
    site.write_text(site.read_text() + AUTH)
    paths, ignore = watch_paths(build_opts)
    outcomes = Outcomes()
    with Watcher(paths, make_build(build_opts), ignore=ignore, quiet_period=0.1, on_build=outcomes.on_build):
        assert outcomes.next()[1] is None  # the initial build
        target = os.readlink(build_opts.out)
        htpasswd = (build_opts.out / ".htpasswd").read_bytes()
        site.write_text(AUTH_EDITS[edit](site.read_text()))
        result, error = outcomes.next()
        assert isinstance(error, BuildError)
        assert error.message == (f"refusing to {edit.removesuffix(' (cut)')} in an unattended rebuild "
                                 "(a half-saved site file?); the last build stays served. "
                                 "Run `polygen build` to apply it deliberately")
        assert "phones-" not in error.message  # no user name in the log or on /healthz
        assert os.readlink(build_opts.out) == target
        assert (build_opts.out / ".htpasswd").read_bytes() == htpasswd

        confirmed = run(build_opts)  # by hand: applied
        assert confirmed.generation != target.rpartition("/")[2]
        (build_opts.inventory / "phones.yaml").touch()  # the next unattended rebuild starts from there
        assert outcomes.next()[1] is None


def test_watch_applies_auth_changes_that_weaken_nothing(build_opts):
    """Turning auth on, starting a rotation with a new user by hand, and ending its overlap
    (dropping previous:) are rebuilt unattended."""
    from polygen.build import run

    site = build_opts.inventory / "site.yaml"
    plain = site.read_text()
    paths, ignore = watch_paths(build_opts)
    outcomes = Outcomes()
    with Watcher(paths, make_build(build_opts), ignore=ignore, quiet_period=0.1, on_build=outcomes.on_build):
        assert outcomes.next()[1] is None
        site.write_text(plain + AUTH)  # on
        assert outcomes.next()[1] is None and (build_opts.out / ".htpasswd").is_file()
        rotated = plain + AUTH.replace("phones-a", "phones-b") + '    previous: [{user: phones-a, password: "x"}]\n'
        site.write_text(rotated)
        assert outcomes.next()[1] is not None  # a new user: refused unattended ...
        run(build_opts)  # ... and confirmed by hand
        site.write_text(plain + AUTH.replace("phones-a", "phones-b"))  # the overlap ends
        result, error = outcomes.next()
        assert error is None and result.changed
        assert (build_opts.out / ".htpasswd").read_text().count("\n") == 1
