"""polygen.gitsource: builds of the inventory as committed (--git), in real git repositories: an
uncommitted edit never goes live and a commit does (`polygen build --git`, `polygen watch --git`,
`polygen serve --watch --git` with its /healthz), errors name the files as in the repository,
and two clones build one commit into the same bytes and the same digest."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from polygen.cli import cli
from polygen.write import current_generation, served_commit

from .conftest import EXAMPLE, TEMPLATES, clean_env, tree_digest
from .daemons import free_port, wait_for_port

WAIT = 30.0  # upper bound for something that must happen (a poll with a deadline, not a sleep)
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository holding the example inventory in inventory/, one commit."""
    r = tmp_path / "repo"
    shutil.copytree(EXAMPLE, r / "inventory", ignore=shutil.ignore_patterns("secrets.yaml"))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", ".")
    git(r, "commit", "-qm", "Example inventory")
    (tmp_path / "firmware").mkdir()
    return r


def args(repo: Path, out: Path, *extra: str) -> list[str]:
    return ["-i", str(repo / "inventory"), "-o", str(out), "-t", str(TEMPLATES),
            "--firmware", str(repo.parent / "firmware"), *extra]


def invoke(*argv: str):
    return CliRunner().invoke(cli, list(argv), catch_exceptions=False)


def rename_ada(repo: Path, name: str) -> None:
    ext = repo / "inventory" / "extensions.yaml"
    ext.write_text(ext.read_text().replace("first_name: Ada", f"first_name: {name}"))


def problems(stderr: str) -> list[str]:
    """stderr without the warnings about the firmware not unpacked (the tests' firmware/ is empty)."""
    return [line for line in stderr.splitlines() if not line.startswith("warning: firmware/")]


def directory(out: Path) -> str:
    return (out / "contacts" / "000000000000-directory.xml").read_text()


# ---------------------------------------------------------------- polygen build --git
def test_build_git_builds_the_commit_not_the_working_tree(repo, tmp_path):
    out = tmp_path / "out"
    rename_ada(repo, "Uncommitted")
    r = invoke("build", "--git", *args(repo, out))
    assert r.exit_code == 0, r.output
    head = git(repo, "rev-parse", "HEAD")
    assert r.stdout == (f"4 phones: 13 files written, 0 unchanged, 0 removed (generation g000001, "
                        f"commit {head[:12]}, digest {tree_digest(out)[:16]})\n")
    assert "<fn>Ada</fn>" in directory(out) and "Uncommitted" not in directory(out)
    assert served_commit(out) == head

    # the edit, committed: built; the same bytes from a later commit: recorded, nothing written
    git(repo, "commit", "-qam", "Rename Ada")
    r = invoke("build", "--git", *args(repo, out))
    second = git(repo, "rev-parse", "HEAD")
    assert r.stdout.startswith(f"4 phones: 2 files written, 11 unchanged, 0 removed (generation g000002, "
                               f"commit {second[:12]}, digest ")
    assert "<fn>Uncommitted</fn>" in directory(out)
    (repo / "inventory" / "README.txt").write_text("not an inventory file\n")
    git(repo, "add", "inventory/README.txt")
    git(repo, "commit", "-qm", "A note")
    third = git(repo, "rev-parse", "HEAD")
    r = invoke("build", "--git", *args(repo, out))
    assert r.stdout == (f"4 phones: nothing changed (13 files unchanged, generation g000002, commit {third[:12]}, "
                        f"digest {tree_digest(out)[:16]})\n")
    assert served_commit(out) == third


def test_build_branch_builds_that_branchs_last_commit(repo, tmp_path):
    git(repo, "checkout", "-qb", "next")
    rename_ada(repo, "Augusta")
    git(repo, "commit", "-qam", "Augusta")
    augusta = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    out = tmp_path / "out"
    r = invoke("build", "--branch", "next", *args(repo, out))  # --branch implies --git
    assert r.exit_code == 0, r.output
    assert served_commit(out) == augusta and "<fn>Augusta</fn>" in directory(out)
    r = CliRunner().invoke(cli, ["build", *args(repo, out)], env={"POLYGEN_GIT": "1"})
    assert served_commit(out) == git(repo, "rev-parse", "main") and "<fn>Ada</fn>" in directory(out)


def test_git_errors_say_what_to_do(repo, tmp_path):
    out = tmp_path / "out"
    plain = tmp_path / "plain"
    shutil.copytree(EXAMPLE, plain)
    r = invoke("build", "--git", "-i", str(plain), "-o", str(out), "-t", str(TEMPLATES))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: --git: {plain} is not in a git repository (fatal: not a git repository")
    assert r.stderr.endswith(f"commit the inventory first (git -C {plain} init), or build the files as they "
                             "are without --git\n")

    r = invoke("build", "--branch", "nope", *args(repo, out))
    assert (r.exit_code, r.stderr) == (1, f"Error: --branch nope: no such branch in the repository at {repo}; "
                                          f"`git -C {repo} branch` lists them\n")
    fresh = tmp_path / "fresh"
    shutil.copytree(EXAMPLE, fresh / "inventory")
    git(fresh, "init", "-q")
    r = invoke("build", "--git", *args(fresh, out))
    assert (r.exit_code, r.stderr) == (1, f"Error: --git: the repository at {fresh} has no commit yet; commit the "
                                          f"inventory (git -C {fresh} add . && git -C {fresh} commit)\n")
    assert not out.exists()


def test_problems_name_the_files_as_in_the_repository(repo, tmp_path):
    phones = repo / "inventory" / "phones.yaml"
    phones.write_text(phones.read_text().replace("model: IP330", "model: VVX41"))
    git(repo, "commit", "-qam", "A typo")
    head = git(repo, "rev-parse", "--short=12", "HEAD")
    git(repo, "checkout", "-q", "--", ".")  # the working tree is fine: the commit is not
    phones.write_text(phones.read_text().replace("model: VVX41", "model: IP330"))
    r = invoke("build", "--git", *args(repo, tmp_path / "out"))
    assert r.exit_code == 1
    assert problems(r.stderr) == [
        f"{repo}/inventory/phones.yaml:4: phones[0].model: unknown model 'VVX41' (did you mean VVX410?); "
        "add it under models: if it is new",
        f"Error: the inventory has 1 error (commit {head})",
    ]


def test_the_secrets_file_comes_from_the_working_tree(repo, tmp_path):
    """Passwords stay out of git: the secrets file is read where it is, git-ignored; one
    committed by mistake is not exported."""
    inv = repo / "inventory"
    (inv / ".gitignore").write_text("secrets.yaml\n")
    ext = inv / "extensions.yaml"
    ext.write_text(ext.read_text().replace('    secret: "s3cret-1001"\n', ""))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "1001's password in the secrets file")
    (inv / "secrets.yaml").write_text('secrets:\n  "1001": "from-the-working-tree"\n')
    (inv / "secrets.yaml").chmod(0o600)
    out = tmp_path / "out"
    r = invoke("build", "--git", *args(repo, out))
    assert r.exit_code == 0, r.output
    assert 'reg.1.auth.password="from-the-working-tree"' in (out / "0004f2000330-phone.cfg").read_text()
    assert git(repo, "status", "--porcelain") == ""  # ignored, as it must be

    (inv / "secrets.yaml").unlink()
    (inv / "secrets.yaml").write_text('secrets:\n  "1001": "committed-by-mistake"\n')
    git(repo, "add", "-f", "inventory/secrets.yaml")
    git(repo, "commit", "-qm", "Oops")
    (inv / "secrets.yaml").unlink()
    r = invoke("build", "--git", *args(repo, out))
    head = git(repo, "rev-parse", "--short=12", "HEAD")
    assert (r.exit_code, problems(r.stderr)) == (1, [
        f"{inv}/extensions.yaml:4: extensions[0].secret: missing secret for extension '1001': set it here, in the "
        'secrets file (secrets: {"1001": …}) or in $POLYGEN_SECRET_1001',
        f"Error: the inventory has 1 error (commit {head})"])


def test_a_committed_symlink_is_refused(repo, tmp_path):
    os.symlink("/etc/passwd", repo / "inventory" / "more.yaml")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "A link")
    head = git(repo, "rev-parse", "--short=12", "HEAD")
    r = invoke("build", "--git", *args(repo, tmp_path / "out"))
    assert (r.exit_code, r.stderr) == (1, f"Error: {repo}/inventory/more.yaml: a symbolic link in commit {head}; "
                                          "a build from git reads regular files only: commit the file itself\n")


# ---------------------------------------------------------------- two servers, one commit
def test_two_clones_build_one_commit_into_the_same_bytes(repo, tmp_path):
    """Two servers: separate clones, out/ elsewhere, another time zone, umask, locale and
    working directory; the second in a process of its own. Same digest, bytes and modes."""
    from .conftest import make_firmware

    origin = repo
    rename_ada(origin, "Augusta")
    git(origin, "commit", "-qam", "Augusta")
    nodes = []
    for name in ("node-a", "node-b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, env={**os.environ, **GIT_ENV})
        make_firmware(clone.parent / f"{name}-firmware", releases=("5.9.7",))
        nodes.append(clone)
    a_out, b_out = tmp_path / "node-a" / "out", tmp_path / "srv" / "out"
    rename_ada(nodes[0], "Not-committed-a")  # each node's working tree differs; the commit does not
    rename_ada(nodes[1], "Not-committed-b")

    def node_args(clone, out):
        return ["-i", str(clone / "inventory"), "-o", str(out), "-t", str(TEMPLATES),
                "--firmware", str(clone.parent / f"{clone.name}-firmware")]

    a = invoke("build", "--git", *node_args(nodes[0], a_out))
    command = shlex.join([sys.executable, "-m", "polygen", "build", "--git", *node_args(nodes[1], b_out)])
    b = subprocess.run(["sh", "-c", f"umask 077 && exec {command}"], cwd=nodes[1], capture_output=True, text=True,
                       env=clean_env(TZ="Asia/Tokyo", LC_ALL="C", LANG="C", POLYGEN_TZ_YEAR="2026"))
    assert a.exit_code == 0 and b.returncode == 0, b.stderr
    last = a.stdout.strip().rsplit(", ", 2)
    assert last[1] == f"commit {git(origin, 'rev-parse', 'HEAD')[:12]}"
    assert a.stdout.split("(")[1] == b.stdout.split("(")[1]  # generation, commit, digest
    assert last[2] == f"digest {tree_digest(a_out)[:16]})"

    def files(out):
        return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o7777)
                for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".polygen-manifest.json"}

    assert files(a_out) == files(b_out)
    assert "<fn>Augusta</fn>" in directory(b_out)


# ---------------------------------------------------------------- polygen watch --git
def wait_for(what, deadline: float = WAIT, proc: subprocess.Popen | None = None, log: Path | None = None):
    end = time.monotonic() + deadline
    while True:
        value = what()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text() if log else ''}")
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline} s:\n{log.read_text() if log else ''}")
        time.sleep(0.05)


def test_watch_git_serves_commits_not_edits(repo, tmp_path):
    """`polygen watch --git`: a file saved but not committed is not built, even when a commit of
    another file follows it; that commit is live a moment later."""
    out = tmp_path / "out"
    log = tmp_path / "watch.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "polygen", "watch", "--git", *args(repo, out)],
                                stdout=fh, stderr=subprocess.STDOUT, env=clean_env(POLYGEN_TZ_YEAR="2026"))
    try:
        first = git(repo, "rev-parse", "HEAD")
        wait_for(lambda: served_commit(out) == first, proc=proc, log=log)
        rename_ada(repo, "Half-saved")  # an editor's save, never committed
        site = repo / "inventory" / "site.yaml"
        site.write_text(site.read_text().replace("name: Example Corp", "name: Example Corp (HQ)"))
        git(repo, "commit", "-qm", "The site's new name", "--", "inventory/site.yaml")
        second = git(repo, "rev-parse", "HEAD")
        wait_for(lambda: served_commit(out) == second, proc=proc, log=log)
        assert current_generation(out).name == "g000002"
        assert "Example Corp (HQ)" in (out / "site.cfg").read_text()
        assert "Half-saved" not in directory(out) and "<fn>Ada</fn>" in directory(out)
    finally:
        proc.terminate()
        proc.wait(WAIT)
    assert proc.returncode == 0, log.read_text()


# ---------------------------------------------------------------- polygen serve --watch --git
def healthz(port: int) -> dict:
    """/healthz's body (also when it is a 503), or {} while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError):
        return {}


def start_serve(repo: Path, out: Path, log: Path, port: int, templates: Path = TEMPLATES) -> subprocess.Popen:
    argv = args(repo, out)
    argv[argv.index("-t") + 1] = str(templates)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "polygen", "serve", "--watch", "--git", "--host", "127.0.0.1",
                                 "--port", str(port), "--db", str(out.parent / "logs.db"), *argv],
                                stdout=fh, stderr=subprocess.STDOUT, env=clean_env(POLYGEN_TZ_YEAR="2026"))
    wait_for_port("127.0.0.1", port, timeout=WAIT, proc=proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(WAIT)


def test_serve_watch_git_healthz_tells_the_commit_and_rollback_holds(repo, tmp_path):
    """The real sidecar: /healthz names the commit served; a commit goes live, an edit does
    not; `polygen rollback` serves the one before, and neither the watcher nor a restart of the
    service puts the rolled-back commit back; the next commit does."""
    out, log, port = tmp_path / "out", tmp_path / "serve.log", free_port()
    proc = start_serve(repo, out, log, port)
    try:
        first = git(repo, "rev-parse", "HEAD")
        health = wait_for(lambda: (h := healthz(port)).get("commit") == first and h, proc=proc, log=log)
        assert health == {"status": "ok", "generation": "g000001", "commit": first, "phones": 4, "db": True}
        with pytest.raises(urllib.error.HTTPError) as record:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.polygen-build.json", timeout=5)
        with record.value as refused:
            assert refused.code == 404

        rename_ada(repo, "Augusta")
        git(repo, "commit", "-qam", "Augusta")
        second = git(repo, "rev-parse", "HEAD")
        wait_for(lambda: healthz(port).get("commit") == second, proc=proc, log=log)
        assert healthz(port)["generation"] == "g000002" and "<fn>Augusta</fn>" in directory(out)

        r = invoke("rollback", "-o", str(out))
        assert (r.exit_code, r.stdout) == (0, (
            f"rolled back: {out} serves g000001 (commit {first[:12]}) again, instead of g000002 "
            f"(commit {second[:12]})\nwatch --git and serve --watch --git leave it so until a new commit; "
            "`polygen build --git` serves the last commit again\n"))
        assert healthz(port) == {"status": "ok", "generation": "g000001", "commit": first, "phones": 4, "db": True}

        # a template touched (the watcher rebuilds), then a restart (it builds at start): held
        templates = tmp_path / "templates"
        shutil.copytree(TEMPLATES, templates)
        stop(proc)
        serve_log = log.read_text()
        proc = start_serve(repo, out, log, port, templates)
        wait_for(lambda: log.read_text().count("not served, it is what `polygen rollback` took down")
                 > serve_log.count("not served"), proc=proc, log=log)
        (templates / "site.cfg.j2").write_text((templates / "site.cfg.j2").read_text() + "\n")
        wait_for(lambda: log.read_text().count("not served, it is what `polygen rollback` took down") >= 2,
                 proc=proc, log=log)
        assert healthz(port) == {"status": "ok", "generation": "g000001", "commit": first, "phones": 4, "db": True}

        ext = repo / "inventory" / "extensions.yaml"
        ext.write_text(ext.read_text().replace("first_name: Augusta", "first_name: Ada Augusta"))
        git(repo, "commit", "-qam", "Ada Augusta")
        third = git(repo, "rev-parse", "HEAD")
        wait_for(lambda: healthz(port).get("commit") == third, proc=proc, log=log)
        assert "<fn>Ada Augusta</fn>" in directory(out)
    finally:
        stop(proc)

