"""A throwaway PostgreSQL server for the tests, and the fixtures that use it.

* ``PgCluster``: ``initdb`` in a new temporary directory, the server started on a free loopback
  port (and a unix socket in that directory, used only to administer it), stopped and deleted by
  ``destroy()`` (or the ``with`` block), whatever happened. PostgreSQL refuses to run as root: as
  root the directory and the server belong to ``nobody``, each server command run with
  ``runuser -u nobody``.
* Clients log in over TCP as the role ``polygen`` with a password (scram-sha-256), as a real
  deployment does, so every URL the tests use carries a password that must never be shown.
* Fixtures (registered by tests/conftest.py): ``pg_cluster`` (one per session) and ``pg_url`` (an
  empty log database for each test: a new schema of the database ``polygen``, named in the URL
  with libpq's ``options=-csearch_path=...``, dropped after the test; a new schema costs a
  millisecond where CREATE DATABASE costs half a second).
* The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``), installed as root by
  scripts/system-deps.sh like the other daemons. Without them and not root, or without psycopg,
  the tests that need PostgreSQL are skipped, saying why.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.daemons import _install_system_deps, free_port, is_root

ROLE = "polygen"
DATABASE = "polygen"
PASSWORD = "pg-test-s3cret"
SUPERUSER = "postgres"
RUN_AS = "nobody"  # the server's user when the tests run as root
_names = itertools.count(1)


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL bin directory with initdb and pg_ctl, else the one on PATH."""
    versions = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and d.parent.name.isdigit():
            versions.append((int(d.parent.name), d))
    if versions:
        return max(versions)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def require_bindir() -> Path:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[pg]' (make venv does)")
    found = find_bindir()
    if found:
        return found
    if not is_root():
        pytest.skip("PostgreSQL is not installed and we are not root: run `sudo sh scripts/system-deps.sh`")
    result = _install_system_deps()
    found = find_bindir()
    if not found:
        pytest.fail(f"PostgreSQL still missing after scripts/system-deps.sh (exit {result.returncode}):\n"
                    f"{result.stdout}\n{result.stderr}")
    return found


class PgCluster:
    """One PostgreSQL server in a temporary directory; see the module docstring."""

    def __init__(self):
        self.bindir = require_bindir()
        self.as_root = is_root()
        if self.as_root:
            try:
                self._owner = pwd.getpwnam(RUN_AS)
            except KeyError:
                pytest.skip(f"running as root and there is no user {RUN_AS!r} to run PostgreSQL as")
            if not shutil.which("runuser"):
                pytest.skip("running as root and runuser (util-linux) is missing to run PostgreSQL as nobody")
        # Short (unix socket paths are < 108 bytes), and as root in /tmp itself, which nobody can
        # reach (pytest's own temporary directories are root's alone).
        self.root = Path(tempfile.mkdtemp(prefix="polygen-pg-", dir="/tmp" if self.as_root else None))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = free_port()
        self.running = False
        if self.as_root:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    # ------------------------------------------------------------------ running the server's tools
    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        result = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if result.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\n{log}")
        return result

    def init(self) -> PgCluster:
        pwfile = self.root / "superuser.pw"
        pwfile.write_text("unused\n")  # initdb wants one for scram; the superuser logs in by socket
        if self.as_root:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# polygen tests: loopback only, the socket in the private directory, no fsync\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 60\nshared_buffers = 16MB\n"
            )
        # trust for the socket (the directory is 0700, its owner's alone), passwords over TCP
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        return self

    def start(self) -> PgCluster:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def destroy(self) -> None:
        try:
            if self.running:
                try:
                    self.stop()
                except (RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                    self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        try:
            self.init().start()
            self.setup_role()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    # ------------------------------------------------------------------ administration
    def admin(self, dbname: str = "postgres"):
        """A superuser connection over the private socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.root), port=self.port, user=SUPERUSER, dbname=dbname,
                               autocommit=True)

    def setup_role(self) -> None:
        """The role and its database, made as the README tells an admin to (createuser, createdb -O)."""
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(PASSWORD)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(
                sql.Identifier(DATABASE), sql.Identifier(ROLE)))

    def url(self, schema: str | None = None, password: str = PASSWORD, database: str = DATABASE) -> str:
        """The role's URL for a database, or for one schema of it."""
        url = f"postgresql://{ROLE}:{password}@127.0.0.1:{self.port}/{database}"
        return url + (f"?options=-csearch_path%3D{schema}" if schema else "")

    def create_schema(self) -> str:
        """A new empty schema owned by the role; returns its name."""
        from psycopg import sql

        name = f"t{os.getpid()}_{next(_names)}"
        with self.admin(DATABASE) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(name), sql.Identifier(ROLE)))
        return name

    def drop_schema(self, name: str) -> None:
        from psycopg import sql

        if not re.fullmatch(r"t\d+_\d+", name):
            raise ValueError(name)
        with self.admin(DATABASE) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def pg_cluster():
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of an empty log database (the role's password in it)."""
    name = pg_cluster.create_schema()
    yield pg_cluster.url(name)
    pg_cluster.drop_schema(name)
