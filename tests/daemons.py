"""Helpers for tests that drive real daemons (nginx, dhcpd, kea-dhcp4, dnsmasq) on loopback.

Plain functions, so any test module can use them with ``from daemons import ...`` (pytest puts
``tests/`` on sys.path):

* ``require_binary(name)``: the daemon's path. Missing binaries are installed once per session
  with ``scripts/system-deps.sh`` when running as root; not root and missing -> ``pytest.skip``
  with the reason.
* ``free_port()`` / ``wait_for_port()``.
* ``write_nginx_main_conf()`` / ``nginx_check()`` / ``Nginx`` (start/stop a real nginx with
  ``daemon off;``, everything — pid, logs, temp dirs — under a temporary prefix).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DEPS = ROOT / "scripts" / "system-deps.sh"
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("nginx", "dhcpd", "kea-dhcp4", "dnsmasq")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def find_binary(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories (often not on a user's PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which(name, path=path)


@functools.cache
def _install_system_deps() -> subprocess.CompletedProcess:
    """Run scripts/system-deps.sh once per session (it is idempotent anyway)."""
    return subprocess.run(
        ["sh", str(SYSTEM_DEPS)], capture_output=True, text=True, timeout=900, check=False
    )


def require_binary(name: str) -> str:
    """Return the path of daemon ``name``; install the system deps as root; skip if impossible."""
    found = find_binary(name)
    if found:
        return found
    if not is_root():
        pytest.skip(f"{name} is not installed and we are not root: run `sudo {SYSTEM_DEPS}`")
    result = _install_system_deps()
    found = find_binary(name)
    if not found:
        pytest.fail(
            f"{name} still missing after {SYSTEM_DEPS} (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the usual bind-to-0 trick; racy but fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts TCP connections on host:port; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


# ---------------------------------------------------------------- nginx
def write_nginx_main_conf(prefix: Path, includes: list[Path] | tuple[Path, ...]) -> Path:
    """Write ``prefix/nginx.conf``: a complete main config whose ``http {}`` includes ``includes``.

    pid, logs and every temp path live under ``prefix``, so nginx touches nothing of the system.
    As root the workers run as root (pytest's tmp dirs are 0700 root); otherwise ``user`` is
    left out (nginx ignores it for non-root masters anyway).
    """
    prefix = Path(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(exist_ok=True)
    mime = Path("/etc/nginx/mime.types")
    lines = [
        "user root;" if is_root() else "",
        "worker_processes 1;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/logs/error.log info;",
        "events { worker_connections 64; }",
        "http {",
        f"    include {mime};" if mime.exists() else "",
        "    default_type application/octet-stream;",
        f"    access_log {prefix}/logs/access.log;",
        f"    client_body_temp_path {prefix}/tmp/body;",
        f"    proxy_temp_path {prefix}/tmp/proxy;",
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;",
        f"    uwsgi_temp_path {prefix}/tmp/uwsgi;",
        f"    scgi_temp_path {prefix}/tmp/scgi;",
        *(f"    include {Path(p).resolve()};" for p in includes),
        "}",
    ]
    conf = prefix / "nginx.conf"
    conf.write_text("\n".join(line for line in lines if line) + "\n")
    return conf


def _nginx_args(nginx: str, conf: Path) -> list[str]:
    prefix = conf.parent
    return [nginx, "-p", f"{prefix}/", "-e", f"{prefix}/logs/error.log", "-c", str(conf)]


def nginx_check(conf: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on a main config written by write_nginx_main_conf (output in .stderr)."""
    nginx = require_binary("nginx")
    return subprocess.run(
        [*_nginx_args(nginx, conf), "-t"], capture_output=True, text=True, timeout=30, check=False
    )


class Nginx:
    """A real nginx in the foreground (``daemon off;``) on a config from write_nginx_main_conf.

    Use as a context manager, or call start()/stop() (a fixture finalizer must call stop()).
    """

    def __init__(self, conf: Path, host: str, port: int):
        self.conf = Path(conf)
        self.host = host
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def error_log(self) -> Path:
        return self.conf.parent / "logs" / "error.log"

    def start(self, timeout: float = 10.0) -> Nginx:
        nginx = require_binary("nginx")
        self.proc = subprocess.Popen(
            [*_nginx_args(nginx, self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() can reap the workers too
        )
        try:
            wait_for_port(self.host, self.port, timeout=timeout, proc=self.proc)
        except Exception as exc:
            self.stop()
            log = self.error_log.read_text() if self.error_log.exists() else "(no error log)"
            raise RuntimeError(f"nginx did not start: {exc}\n{log}") from exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
